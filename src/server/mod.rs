//! The server: one event loop per worker, each single-threaded and owning
//! its sockets, meeting on the bus ([`crate::bus`]).
//!
//! With one loop (`workers = 1`, or [`Server::bind`] with one handler) the
//! loop accepts its own connections and runs on the caller's thread: today's
//! server. With several ([`Server::bind_with`] and a handler factory), loop
//! 0 runs on the caller's thread and the others on threads of their own, and
//! an acceptor thread takes every connection and hands it to a loop, in
//! turn, passing over a loop whose last turn began more than
//! [`STALL_MS`] ago (one stuck in a slow handler): a stalled loop is not
//! handed new connections while it is stalled. (Why an acceptor and not
//! `SO_REUSEPORT` listeners: with those the kernel spreads connections by
//! address hash and keeps handing a stalled loop its share, which then wait
//! in that loop's backlog; see the README.)

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;

use mio::net::TcpListener;
use mio::{Interest, Poll, Token, Waker};

use crate::bus::{Bus, Command};
use crate::config::Config;
use crate::error::{BindError, BindStep};
use crate::handler::Handler;
use crate::http::router::{Method, RouteError};
use crate::http::{HttpRequest, Response};
use crate::hub::Hub;
use crate::remote::Remote;
use crate::tls::TlsConfig;

pub(crate) use admission::Refusal;

mod accept;
mod acceptor;
mod admission;
mod dispatch;
mod event_loop;
pub(crate) mod http;
mod inbox;
mod parked;
mod read;
mod timers;
mod write;

#[cfg(feature = "bench-internals")]
pub(crate) use dispatch::notify_closed;
use event_loop::{Loop, Seat};

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
/// Room before the read area for carried-over input (a partial frame header
/// or control frame is at most 139 bytes).
const RESERVE: usize = 256;
/// Bytes read per `read` call: room for a 64 KiB message with its header in
/// one read, so it decodes in place.
const READ_CHUNK: usize = 256 * 1024;
/// Reads per socket per turn before it is requeued (1 MiB).
const READ_BUDGET: u32 = 4;
/// A loop whose turn began longer ago than this (ms) is stalled: the
/// acceptor hands new connections to the others.
pub const STALL_MS: u64 = 200;

/// A user route, shared by every loop.
pub(crate) type SharedRoute = Arc<dyn Fn(&mut Hub, &HttpRequest) -> Response + Send + Sync>;
/// A user route with its method and pattern.
pub(crate) type UserRouteSpec = (Method, String, SharedRoute);
/// Makes the handler of loop `i`.
type Factory<H> = Arc<dyn Fn(usize) -> H + Send + Sync + 'static>;

/// Stops a running [`Server`] from another thread (or a signal handler thread).
#[derive(Clone)]
pub struct ShutdownHandle {
    bus: Arc<Bus>,
    acceptor: Option<Arc<Waker>>,
}

impl ShutdownHandle {
    /// Ask the server to shut down: every loop stops accepting, closes every
    /// socket with 1001, and `run` returns within `close_timeout`.
    pub fn shutdown(&self) {
        self.bus.stop.store(true, Ordering::SeqCst);
        self.bus.wake_all();
        if let Some(waker) = &self.acceptor {
            if let Err(e) = waker.wake() {
                log::error!("shutdown: cannot wake the acceptor: {e}");
            }
        }
    }
}

/// A loop made at bind time that runs on a thread of its own.
struct Seed {
    poll: Poll,
    inbox: Receiver<Command>,
}

/// A WebSocket server: its event loops, their hubs and handlers.
pub struct Server<H: Handler> {
    main: Loop<H>,
    seeds: Vec<Seed>,
    factory: Option<Factory<H>>,
    acceptor: Option<acceptor::Acceptor>,
    acceptor_waker: Option<Arc<Waker>>,
    routes: Vec<UserRouteSpec>,
    config: Arc<Config>,
    bus: Arc<Bus>,
    local_addr: SocketAddr,
    tls: Option<Arc<TlsConfig>>,
}

impl<H: Handler + 'static> Server<H> {
    /// One loop with `handler`: validate `config`, bind the listener of
    /// `config.listen` and prepare the loop (`workers` is not used: one
    /// handler runs one loop; see [`Server::bind_with`]).
    ///
    /// # Errors
    ///
    /// [`BindError::Config`] when [`Config::validate`] refuses the
    /// configuration; [`BindError::Io`] with the [`BindStep`] that failed
    /// (most often [`BindStep::Listen`]: the address is in use or not ours).
    pub fn bind(config: Config, handler: H) -> Result<Server<H>, BindError> {
        Server::build(config, 1, handler, None)
    }

    /// `config.workers` loops (0: one per CPU the process may use), each
    /// with the handler `factory` makes for it (called with the loop's
    /// index, on the loop's own thread). Loop 0 runs on the thread that
    /// calls [`Server::run`].
    ///
    /// # Errors
    ///
    /// As [`Server::bind`].
    pub fn bind_with(
        config: Config,
        factory: impl Fn(usize) -> H + Send + Sync + 'static,
    ) -> Result<Server<H>, BindError> {
        let loops = config.worker_count();
        let main = factory(0);
        Server::build(config, loops, main, Some(Arc::new(factory)))
    }

    fn build(
        config: Config,
        loops: usize,
        handler: H,
        factory: Option<Factory<H>>,
    ) -> Result<Server<H>, BindError> {
        config.validate()?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(
                TlsConfig::load(cert, key).map_err(BindError::Tls)?,
            )),
            _ => None,
        };
        let cluster = match config.cluster_redis.as_deref() {
            Some(url) => {
                Some(crate::cluster::Cluster::start(&config, url).map_err(BindError::Cluster)?)
            }
            None => None,
        };
        let loops = loops.clamp(1, 256);
        let mut polls = Vec::with_capacity(loops);
        let mut wakers = Vec::with_capacity(loops);
        for _ in 0..loops {
            let poll = Poll::new().map_err(BindError::io(BindStep::CreatePoll))?;
            let waker =
                Waker::new(poll.registry(), WAKER).map_err(BindError::io(BindStep::CreateWaker))?;
            wakers.push(Arc::new(waker));
            polls.push(poll);
        }
        let mut listener = TcpListener::bind(config.listen)
            .map_err(BindError::io(BindStep::Listen(config.listen)))?;
        let local_addr = listener
            .local_addr()
            .map_err(BindError::io(BindStep::LocalAddr))?;
        let (cluster, cluster_seed) = cluster.map_or((None, None), |(c, s)| (Some(c), Some(s)));
        let (bus, inboxes) = Bus::new(wakers, cluster.clone());
        if let (Some(cluster), Some(seed)) = (cluster, cluster_seed) {
            log::info!("cluster: this is node {}", cluster.node());
            crate::cluster::Worker::spawn(cluster, seed, &bus, local_addr.to_string())
                .map_err(BindError::io(BindStep::CreatePoll))?;
        }
        let config = Arc::new(config);
        let mut polls = polls.into_iter();
        let mut inboxes = inboxes.into_iter();
        let (Some(main_poll), Some(main_inbox)) = (polls.next(), inboxes.next()) else {
            return Err(BindError::io(BindStep::CreatePoll)(io::Error::other(
                "no loop",
            )));
        };
        let (main_listener, acceptor, acceptor_waker) = if loops == 1 {
            main_poll
                .registry()
                .register(&mut listener, LISTENER, Interest::READABLE)
                .map_err(BindError::io(BindStep::Register))?;
            (Some(listener), None, None)
        } else {
            let acceptor = acceptor::Acceptor::new(
                listener,
                Arc::clone(&bus),
                admission::Admission::new(&config),
            )
            .map_err(BindError::io(BindStep::Register))?;
            let waker = acceptor.waker();
            (None, Some(acceptor), Some(waker))
        };
        let seat = Seat {
            poll: main_poll,
            listener: main_listener,
            inbox: main_inbox,
            index: 0,
            tls: tls.clone(),
        };
        let main = Loop::new(Arc::clone(&config), seat, Arc::clone(&bus), handler, &[]);
        let seeds = polls
            .zip(inboxes)
            .map(|(poll, inbox)| Seed { poll, inbox })
            .collect();
        Ok(Server {
            main,
            seeds,
            factory,
            acceptor,
            acceptor_waker,
            routes: Vec::new(),
            config,
            bus,
            local_addr,
            tls,
        })
    }

    /// The port's TLS settings, when `tls_cert` and `tls_key` are set: call
    /// [`TlsConfig::reload`] on it (from any thread) to read the files
    /// again, e.g. on SIGHUP.
    pub fn tls(&self) -> Option<Arc<TlsConfig>> {
        self.tls.clone()
    }

    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many event loops the server runs.
    pub fn workers(&self) -> usize {
        self.bus.loops()
    }

    /// A handle that stops this server from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            bus: Arc::clone(&self.bus),
            acceptor: self.acceptor_waker.clone(),
        }
    }

    /// Schedule job `name` before the server runs: it lives on loop 0 (the
    /// thread that calls `run`), where [`Handler::on_job`] runs at each of
    /// its runs. (A handler adds jobs on its own loop with [`Hub::add_job`].)
    pub fn add_job(
        &mut self,
        name: &str,
        trigger: crate::scheduler::Trigger,
        options: crate::scheduler::JobOptions,
    ) -> Result<(), crate::scheduler::ScheduleError> {
        self.main.hub.add_job(name, trigger, options)
    }

    /// A handle for other threads: the hub's sends, joins and closes, posted
    /// to the loops that own the sockets (see [`Remote`]).
    pub fn remote(&self) -> Remote {
        Remote::new(Arc::clone(&self.bus), Arc::clone(&self.config))
    }

    /// Add an HTTP route: `f` answers `method` requests to `pattern` (segments
    /// like `:name` capture, see [`crate::http::router`]), on whichever loop
    /// accepted the request. User routes beside the built-in ones; a
    /// pattern already taken is an error.
    pub fn route(
        &mut self,
        method: Method,
        pattern: &str,
        f: impl Fn(&mut Hub, &HttpRequest) -> Response + Send + Sync + 'static,
    ) -> Result<(), RouteError> {
        let spec: UserRouteSpec = (method, pattern.to_owned(), Arc::new(f));
        self.main.route(&spec)?;
        self.routes.push(spec);
        Ok(())
    }

    /// The hub of loop 0, to act before `run` (add timers, …).
    pub fn hub_mut(&mut self) -> &mut Hub {
        &mut self.main.hub
    }

    /// The hub of loop 0 (for inspection between turns, e.g. in tests).
    pub fn hub(&self) -> &Hub {
        &self.main.hub
    }

    /// Run until shut down: loop 0 on this thread, the others (and the
    /// acceptor) on threads of their own, joined before this returns. Only
    /// failures of a poll itself end it with an error.
    pub fn run(&mut self) -> io::Result<()> {
        let mut threads: Vec<JoinHandle<io::Result<()>>> = Vec::new();
        if let (Some(factory), seeds) = (self.factory.clone(), std::mem::take(&mut self.seeds)) {
            for (i, seed) in seeds.into_iter().enumerate() {
                let index = i + 1;
                let (factory, config, bus, routes, tls) = (
                    Arc::clone(&factory),
                    Arc::clone(&self.config),
                    Arc::clone(&self.bus),
                    self.routes.clone(),
                    self.tls.clone(),
                );
                let thread = std::thread::Builder::new()
                    .name(format!("gmws-loop-{index}"))
                    .spawn(move || {
                        let handler = factory(index);
                        let seat = Seat {
                            poll: seed.poll,
                            listener: None,
                            inbox: seed.inbox,
                            index: index as u8,
                            tls,
                        };
                        let mut event_loop = Loop::new(config, seat, bus, handler, &routes);
                        event_loop.run()
                    })?;
                threads.push(thread);
            }
        }
        if let Some(acceptor) = self.acceptor.take() {
            threads.push(
                std::thread::Builder::new()
                    .name("gmws-acceptor".to_owned())
                    .spawn(move || acceptor.run())?,
            );
        }
        let result = self.main.run();
        if result.is_err() {
            // Loop 0 failed: the others must not run on without it.
            self.shutdown_handle().shutdown();
        }
        let mut outcome = result;
        for thread in threads {
            let joined = thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a loop thread panicked")));
            if outcome.is_ok() {
                outcome = joined;
            }
        }
        outcome
    }
}
