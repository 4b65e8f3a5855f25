//! The server against an independent client: tungstenite.

mod support;

use std::net::TcpStream;

use support::*;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

fn connect(addr: std::net::SocketAddr) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let (ws, response) = tungstenite::client(format!("ws://{addr}/"), stream).expect("handshake");
    assert_eq!(response.status(), 101);
    ws
}

#[test]
fn echoes_text_and_binary_of_every_size() {
    let server = start_echo(test_config());
    let mut ws = connect(server.addr);
    for len in [0usize, 1, 125, 126, 65535, 65536, 300_000] {
        let text: String = (0..len)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        ws.send(Message::text(text.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text(text));
        let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        ws.send(Message::binary(data.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::binary(data));
    }
}

#[test]
fn multibyte_text_survives() {
    let server = start_echo(test_config());
    let mut ws = connect(server.addr);
    let text = "κόσμε € 𝄞 ".repeat(5000);
    ws.send(Message::text(text.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text(text));
}

#[test]
fn ping_is_answered_with_pong() {
    let server = start_echo(test_config());
    let mut ws = connect(server.addr);
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .unwrap();
    assert_eq!(
        ws.read().unwrap(),
        Message::Pong(b"are you there".to_vec().into())
    );
}

#[test]
fn close_handshake_echoes_the_code() {
    let server = start_echo(test_config());
    let mut ws = connect(server.addr);
    ws.close(Some(CloseFrame {
        code: CloseCode::Library(4001),
        reason: "done".into(),
    }))
    .unwrap();
    match ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Library(4001)),
        other => panic!("expected close, got {other:?}"),
    }
    // Then the server closes TCP; tungstenite reports the connection closed.
    match ws.read() {
        Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {}
        other => panic!("expected the connection closed, got {other:?}"),
    }
}

#[test]
fn many_clients_interleaved() {
    let server = start_echo(test_config());
    let mut clients: Vec<_> = (0..20).map(|_| connect(server.addr)).collect();
    for round in 0..10 {
        for (i, ws) in clients.iter_mut().enumerate() {
            ws.send(Message::text(format!("{i}:{round}"))).unwrap();
        }
        for (i, ws) in clients.iter_mut().enumerate() {
            assert_eq!(ws.read().unwrap(), Message::text(format!("{i}:{round}")));
        }
    }
}
