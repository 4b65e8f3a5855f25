//! The experiment behind gmws's acceptor thread (README "Every core"): with
//! one `SO_REUSEPORT` listener per loop, the kernel spreads new connections
//! over the listeners by a hash of their addresses and knows nothing of a
//! loop that is stuck in a handler, so the stuck loop keeps getting its
//! share, which waits in its backlog. gmws's acceptor passes a stalled loop
//! over instead (tests/workers.rs `a_stalled_loop_is_not_handed_new_connections`).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

fn reuseport_listener(addr: SocketAddr) -> TcpListener {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    socket.set_reuse_port(true).unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(1024).unwrap();
    socket.into()
}

#[test]
fn reuseport_keeps_handing_a_stalled_listener_its_share() {
    let healthy = reuseport_listener("127.0.0.1:0".parse().unwrap());
    let addr = healthy.local_addr().unwrap();
    // The second "loop" is stalled: it never accepts.
    let _stalled = reuseport_listener(addr);
    healthy.set_nonblocking(true).unwrap();
    let clients: Vec<TcpStream> = (0..40).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut accepted = 0;
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        match healthy.accept() {
            Ok(_) => accepted += 1,
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    let stuck = clients.len() - accepted;
    println!("SO_REUSEPORT: {accepted} of 40 accepted by the healthy listener, {stuck} stuck behind the stalled one");
    assert!(stuck > 0, "the kernel gave the stalled listener no share");
    assert!(accepted > 0);
}
