//! RFC 1035 §4.1 / RFC 6891 / RFC 7766: malformed messages over real sockets get FORMERR,
//! NOTIMP or silence, never a crash; a valid query afterwards is answered.

mod common;
mod sockets;

use sockets::{header, question, start, tcp_read_reply, udp_exchange};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

const OPT: [u8; 11] = [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0];

fn corpus() -> Vec<(&'static str, Vec<u8>, u8)> {
    let q = question("www.example.test");
    let cat = |parts: &[&[u8]]| parts.concat();
    let mut long_name = Vec::new();
    for _ in 0..5 {
        long_name.push(63u8);
        long_name.extend_from_slice(&[b'a'; 63]);
    }
    long_name.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut label64 = vec![64u8];
    label64.extend_from_slice(&[b'a'; 64]);
    label64.extend_from_slice(&[0, 0, 1, 0, 1]);
    let formerr = 1;
    let notimp = 4;
    vec![
        (
            "header only, QDCOUNT=1",
            header(0x0100, 1, 0, 0, 0),
            formerr,
        ),
        (
            "truncated question",
            cat(&[&header(0x0100, 1, 0, 0, 0), &q[..q.len() - 2]]),
            formerr,
        ),
        (
            "compression pointer loop",
            cat(&[&header(0x0100, 1, 0, 0, 0), &[0xc0, 0x0c, 0, 1, 0, 1]]),
            formerr,
        ),
        (
            "forward pointer",
            cat(&[
                &header(0x0100, 1, 0, 0, 0),
                &[0xc0, 0x12, 0, 1, 0, 1, 3, b'w', b'w', b'w', 0],
            ]),
            formerr,
        ),
        (
            "pointer past the end",
            cat(&[&header(0x0100, 1, 0, 0, 0), &[0xc0, 0xff, 0, 1, 0, 1]]),
            formerr,
        ),
        (
            "label length 64",
            cat(&[&header(0x0100, 1, 0, 0, 0), &label64]),
            formerr,
        ),
        (
            "name longer than 255",
            cat(&[&header(0x0100, 1, 0, 0, 0), &long_name]),
            formerr,
        ),
        (
            "QDCOUNT=65535 ANCOUNT=65535",
            cat(&[&header(0x0100, 65535, 65535, 0, 0), &q]),
            formerr,
        ),
        (
            "QDCOUNT=2",
            cat(&[&header(0x0100, 2, 0, 0, 0), &q, &q]),
            formerr,
        ),
        (
            "short OPT",
            cat(&[&header(0x0100, 1, 0, 0, 1), &q, &OPT[..5]]),
            formerr,
        ),
        (
            "OPT with non-root owner",
            cat(&[&header(0x0100, 1, 0, 0, 1), &q, &[1, b'a'], &OPT]),
            formerr,
        ),
        (
            "two OPTs",
            cat(&[&header(0x0100, 1, 0, 0, 2), &q, &OPT, &OPT]),
            formerr,
        ),
        (
            "record in answer section",
            cat(&[&header(0x0100, 1, 1, 0, 0), &q]),
            formerr,
        ),
        (
            "unknown opcode",
            cat(&[&header(0x7900, 1, 0, 0, 0), &q]),
            notimp,
        ),
        (
            "unknown opcode, garbage body",
            cat(&[&header(0x7900, 1, 0, 0, 0), &[0xff, 0xff]]),
            notimp,
        ),
    ]
}

fn check_reply(what: &str, reply: &[u8], expected_rcode: u8) {
    assert!(reply.len() >= 12, "{what}: short reply");
    assert_eq!(&reply[..2], &[0xbe, 0xef], "{what}: id echoed");
    assert!(reply[2] & 0x80 != 0, "{what}: QR set");
    assert_eq!(reply[3] & 0x0f, expected_rcode, "{what}: rcode");
}

#[tokio::test]
async fn rfc1035_4_1_malformed_udp_queries_get_formerr_notimp_or_silence() {
    let (address, _catalog, _stop) = start().await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("loopback bind");
    socket.connect(address).await.expect("loopback connect");
    for length in 0..12 {
        let packet = vec![0xab; length];
        assert!(
            udp_exchange(&socket, &packet).await.is_none(),
            "{length} bytes: silence"
        );
    }
    let mut response = cat_query();
    response[2] |= 0x80;
    assert!(
        udp_exchange(&socket, &response).await.is_none(),
        "QR=1: silence"
    );
    for (what, packet, rcode) in corpus() {
        if let Some(reply) = udp_exchange(&socket, &packet).await {
            check_reply(what, &reply, rcode);
        }
    }
    let reply = udp_exchange(&socket, &cat_query())
        .await
        .expect("valid query answered");
    check_reply("valid query", &reply, 0);
    assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 2, "two A records");
}

fn cat_query() -> Vec<u8> {
    [header(0x0100, 1, 0, 0, 0), question("www.example.test")].concat()
}

#[tokio::test]
async fn rfc7766_malformed_tcp_messages_get_formerr_or_close_and_valid_ones_are_answered() {
    let (address, _catalog, _stop) = start().await;
    // Malformed messages, properly framed, then a valid one on the same connection.
    let mut stream = TcpStream::connect(address).await.expect("loopback connect");
    for (what, packet, rcode) in corpus() {
        let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&packet);
        stream.write_all(&framed).await.expect("write");
        let reply = tcp_read_reply(&mut stream).await.expect(what);
        check_reply(what, &reply, rcode);
    }
    let query = cat_query();
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    // Pipelined: two queries in one write, two answers in order.
    let twice = [framed.clone(), framed.clone()].concat();
    stream.write_all(&twice).await.expect("write");
    for _ in 0..2 {
        let reply = tcp_read_reply(&mut stream).await.expect("pipelined answer");
        check_reply("pipelined", &reply, 0);
    }
    // A length prefix promising more than is sent, then EOF: the server closes quietly.
    let mut stream = TcpStream::connect(address).await.expect("loopback connect");
    stream
        .write_all(&[0xff, 0xff, 1, 2, 3])
        .await
        .expect("write");
    stream.shutdown().await.expect("half close");
    assert!(tcp_read_reply(&mut stream).await.is_none());
    // A single byte of length prefix.
    let mut stream = TcpStream::connect(address).await.expect("loopback connect");
    stream.write_all(&[0x00]).await.expect("write");
    stream.shutdown().await.expect("half close");
    assert!(tcp_read_reply(&mut stream).await.is_none());
    // The server is still answering.
    let mut stream = TcpStream::connect(address).await.expect("loopback connect");
    stream.write_all(&framed).await.expect("write");
    let reply = tcp_read_reply(&mut stream)
        .await
        .expect("answer after abuse");
    check_reply("valid query over TCP", &reply, 0);
}
