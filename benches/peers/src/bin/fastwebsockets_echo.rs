//! fastwebsockets echo server, as the crate's own `echo_server` example does
//! it (hyper upgrade, `FragmentCollector`, an unconstrained task per
//! connection), on a current-thread runtime with TCP_NODELAY.
//!
//! `fastwebsockets_echo 127.0.0.1:9003`
//!
//! Echoes every text and binary message; the message limit is set to 16 MiB
//! (the gmws echo example's limit).

use fastwebsockets::{upgrade, FragmentCollector, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use tokio::net::TcpListener;

/// Message limit, the same as gmws's echo example.
const LIMIT: usize = 16 << 20;

async fn echo(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = fut.await?;
    ws.set_max_message_size(LIMIT);
    ws.set_auto_pong(true);
    ws.set_auto_close(true);
    let mut ws = FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
}

async fn upgrade_request(
    mut request: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, fut) = upgrade::upgrade(&mut request)?;
    tokio::task::spawn(async move {
        let _ = tokio::task::unconstrained(echo(fut)).await;
    });
    Ok(response)
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9003".to_owned());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("fastwebsockets_echo: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async move {
        let listener = match TcpListener::bind(&addr).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("fastwebsockets_echo: cannot listen on {addr}: {e}");
                std::process::exit(1);
            }
        };
        eprintln!("fastwebsockets_echo: listening on {addr}");
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                // EMFILE and friends: keep serving the connections we have.
                Err(e) => {
                    eprintln!("fastwebsockets_echo: accept: {e}");
                    tokio::task::yield_now().await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = http1::Builder::new()
                    .serve_connection(io, service_fn(upgrade_request))
                    .with_upgrades()
                    .await;
            });
        }
    });
}
