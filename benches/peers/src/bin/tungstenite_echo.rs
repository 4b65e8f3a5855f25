//! tokio-tungstenite echo server, as the crate's own `echo-server` example
//! does it, on a current-thread runtime with TCP_NODELAY.
//!
//! `tungstenite_echo 127.0.0.1:9002`
//!
//! Echoes every text and binary message; frame and message limits are raised
//! to 16 MiB (the gmws echo example's limits).

use futures_util::{future, StreamExt, TryStreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Frame and message limit, the same as gmws's echo example.
const LIMIT: usize = 16 << 20;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".to_owned());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tungstenite_echo: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async move {
        let listener = match TcpListener::bind(&addr).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("tungstenite_echo: cannot listen on {addr}: {e}");
                std::process::exit(1);
            }
        };
        eprintln!("tungstenite_echo: listening on {addr}");
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream));
                }
                // EMFILE and friends: keep serving the connections we have.
                Err(e) => {
                    eprintln!("tungstenite_echo: accept: {e}");
                    tokio::task::yield_now().await;
                }
            }
        }
    });
}

async fn serve(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let config = WebSocketConfig::default()
        .max_message_size(Some(LIMIT))
        .max_frame_size(Some(LIMIT));
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (write, read) = ws.split();
    // Only data messages are echoed; tungstenite answers pings and closes itself.
    let _ = read
        .try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}
