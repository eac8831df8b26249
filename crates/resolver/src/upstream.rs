//! One exchange with one upstream over UDP (connected socket, fresh source port) or TCP.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Largest answer we read from an upstream.
const RECEIVE_BYTES: usize = 65_535;

/// Why an exchange gave nothing.
#[derive(Debug)]
pub enum ExchangeError {
    Timeout,
    Io(std::io::Error),
}

impl std::fmt::Display for ExchangeError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExchangeError::Timeout => formatter.write_str("timed out"),
            ExchangeError::Io(error) => write!(formatter, "{error}"),
        }
    }
}

impl From<std::io::Error> for ExchangeError {
    fn from(error: std::io::Error) -> ExchangeError {
        ExchangeError::Io(error)
    }
}

/// Sends `query` over UDP and returns the first datagram that carries the same ID (a
/// connected socket only accepts datagrams from the upstream). A dead upstream on the
/// same host answers with ICMP port unreachable, which surfaces here as an error at once.
pub async fn udp(
    server: SocketAddr,
    query: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, ExchangeError> {
    let local: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    socket.send(query).await?;
    let mut buffer = vec![0u8; RECEIVE_BYTES];
    let exchange = async {
        loop {
            let length = socket.recv(&mut buffer).await?;
            if length >= 2 && buffer[..2] == query[..2] {
                return Ok::<usize, std::io::Error>(length);
            }
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(length)) => {
            buffer.truncate(length);
            Ok(buffer)
        }
        Ok(Err(error)) => Err(ExchangeError::Io(error)),
        Err(_) => Err(ExchangeError::Timeout),
    }
}

/// Sends `query` over TCP (RFC 7766 framing) and reads one answer.
pub async fn tcp(
    server: SocketAddr,
    query: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, ExchangeError> {
    let exchange = async {
        let mut stream = TcpStream::connect(server).await?;
        let length = u16::try_from(query.len()).map_err(std::io::Error::other)?;
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&length.to_be_bytes());
        framed.extend_from_slice(query);
        stream.write_all(&framed).await?;
        let mut prefix = [0u8; 2];
        stream.read_exact(&mut prefix).await?;
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        stream.read_exact(&mut answer).await?;
        Ok::<Vec<u8>, std::io::Error>(answer)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(ExchangeError::Timeout),
    }
}
