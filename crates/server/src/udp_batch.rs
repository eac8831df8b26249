//! Batched UDP: up to [`BATCH`] datagrams per system call with `recvmmsg`/`sendmmsg`.
//!
//! With `memory`, the crate's only module with `unsafe` code: the two system calls and the
//! zeroing of the C structures they fill. Every block says why it is sound. Elsewhere
//! than Linux the same interface is served one datagram at a time with the standard
//! library.
#![allow(unsafe_code)]

use std::net::UdpSocket;

/// Datagrams read or written per system call.
pub(crate) const BATCH: usize = 32;
/// Largest datagram read; anything longer is cut and then fails to parse.
pub(crate) const RECEIVE_BYTES: usize = 65_535;
/// Room for one reply: UDP replies are at most 4096 bytes plus a question and an OPT.
pub(crate) const REPLY_BYTES: usize = 4_096 + 512;

/// Receive and reply buffers for one worker, reused for every batch.
pub(crate) struct Batch {
    queries: Vec<u8>,
    replies: Vec<u8>,
    query_lengths: [usize; BATCH],
    reply_lengths: [usize; BATCH],
    received: usize,
    peers: Peers,
}

impl Batch {
    pub(crate) fn new() -> Batch {
        Batch {
            queries: vec![0; BATCH * RECEIVE_BYTES],
            replies: vec![0; BATCH * REPLY_BYTES],
            query_lengths: [0; BATCH],
            reply_lengths: [0; BATCH],
            received: 0,
            peers: Peers::new(),
        }
    }

    /// Datagrams in the batch.
    pub(crate) fn len(&self) -> usize {
        self.received
    }

    /// The `index`th query and the buffer for its reply.
    pub(crate) fn slot(&mut self, index: usize) -> (&[u8], &mut [u8]) {
        let query_start = index * RECEIVE_BYTES;
        let query = &self.queries[query_start..query_start + self.query_lengths[index]];
        let reply_start = index * REPLY_BYTES;
        (
            query,
            &mut self.replies[reply_start..reply_start + REPLY_BYTES],
        )
    }

    /// The source address of the `index`th query.
    pub(crate) fn peer(&self, index: usize) -> Option<std::net::IpAddr> {
        self.peers.address(index)
    }

    /// Marks the `index`th reply as `length` bytes long (0: no reply).
    pub(crate) fn set_reply(&mut self, index: usize, length: usize) {
        self.reply_lengths[index] = length.min(REPLY_BYTES);
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::os::fd::AsRawFd;

    /// Peer addresses of a batch, as the kernel wrote them.
    pub(crate) struct Peers {
        addresses: Box<[libc::sockaddr_storage; BATCH]>,
        lengths: [libc::socklen_t; BATCH],
    }

    impl Peers {
        pub(crate) fn new() -> Peers {
            // SAFETY: sockaddr_storage is a plain C struct of integers and byte arrays;
            // all zeroes is a valid (unspecified-family) value.
            let addresses = Box::new(unsafe { zeroed::<[libc::sockaddr_storage; BATCH]>() });
            Peers {
                addresses,
                lengths: [0; BATCH],
            }
        }
    }

    impl Peers {
        /// The `index`th peer's address, as the kernel wrote it.
        pub(crate) fn address(&self, index: usize) -> Option<std::net::IpAddr> {
            let storage = self.addresses.get(index)?;
            let length = *self.lengths.get(index)? as usize;
            match i32::from(storage.ss_family) {
                libc::AF_INET if length >= size_of::<libc::sockaddr_in>() => {
                    // SAFETY: the kernel wrote a sockaddr_in (family AF_INET, length
                    // checked) at the start of this sockaddr_storage, which is larger and
                    // aligned for every socket address type.
                    let v4 = unsafe {
                        &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                    };
                    Some(std::net::IpAddr::from(
                        u32::from_be(v4.sin_addr.s_addr).to_be_bytes(),
                    ))
                }
                libc::AF_INET6 if length >= size_of::<libc::sockaddr_in6>() => {
                    // SAFETY: as above, for a sockaddr_in6 (family AF_INET6).
                    let v6 = unsafe {
                        &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                    };
                    Some(std::net::IpAddr::from(v6.sin6_addr.s6_addr))
                }
                _ => None,
            }
        }
    }

    fn empty_headers() -> [libc::mmsghdr; BATCH] {
        // SAFETY: mmsghdr is a plain C struct of integers and raw pointers; all zeroes
        // (null pointers, zero lengths) is valid and is what the C API expects before use.
        unsafe { zeroed() }
    }

    /// Blocks until at least one datagram arrives (or the socket's read timeout passes),
    /// then takes every datagram already queued, up to [`BATCH`].
    pub(crate) fn receive(socket: &UdpSocket, batch: &mut Batch) -> io::Result<usize> {
        let mut iovecs: [libc::iovec; BATCH] = std::array::from_fn(|i| libc::iovec {
            iov_base: batch.queries[i * RECEIVE_BYTES..].as_mut_ptr().cast(),
            iov_len: RECEIVE_BYTES,
        });
        let mut headers = empty_headers();
        for (i, header) in headers.iter_mut().enumerate() {
            header.msg_hdr.msg_name =
                (&mut batch.peers.addresses[i] as *mut libc::sockaddr_storage).cast();
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_hdr.msg_iov = &mut iovecs[i];
            header.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at one iovec and one sockaddr_storage that live
        // until the call returns; each iovec covers RECEIVE_BYTES bytes inside
        // `batch.queries`, which holds BATCH * RECEIVE_BYTES bytes; the kernel writes at
        // most `vlen` = BATCH headers.
        let received = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            batch.received = 0;
            return Err(io::Error::last_os_error());
        }
        // Non-negative and at most BATCH, so the conversion cannot fail.
        let received = usize::try_from(received).unwrap_or(0).min(BATCH);
        for (i, header) in headers.iter().take(received).enumerate() {
            batch.query_lengths[i] = (header.msg_len as usize).min(RECEIVE_BYTES);
            batch.peers.lengths[i] = header.msg_hdr.msg_namelen;
            batch.reply_lengths[i] = 0;
        }
        batch.received = received;
        Ok(received)
    }

    /// Sends every reply of the batch to its peer. A reply the kernel refuses is skipped
    /// (the client retries), like a failed `send_to`.
    pub(crate) fn send(socket: &UdpSocket, batch: &mut Batch) {
        let mut iovecs: [libc::iovec; BATCH] = std::array::from_fn(|_| libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        });
        let mut headers = empty_headers();
        let mut count = 0;
        for i in 0..batch.received {
            if batch.reply_lengths[i] == 0 {
                continue;
            }
            iovecs[count] = libc::iovec {
                iov_base: batch.replies[i * REPLY_BYTES..].as_mut_ptr().cast(),
                iov_len: batch.reply_lengths[i],
            };
            let header = &mut headers[count].msg_hdr;
            header.msg_name = (&mut batch.peers.addresses[i] as *mut libc::sockaddr_storage).cast();
            header.msg_namelen = batch.peers.lengths[i];
            count += 1;
        }
        for (header, iovec) in headers.iter_mut().zip(iovecs.iter_mut()).take(count) {
            header.msg_hdr.msg_iov = iovec;
            header.msg_hdr.msg_iovlen = 1;
        }
        let mut sent = 0;
        while sent < count {
            // SAFETY: headers[sent..count] each point at one iovec inside `batch.replies`
            // (reply_lengths are at most REPLY_BYTES, the slot size) and at one peer
            // address written by recvmmsg with its length; all live until the call returns.
            let result = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    headers[sent..].as_mut_ptr(),
                    (count - sent) as libc::c_uint,
                    0,
                )
            };
            if result <= 0 {
                let error = io::Error::last_os_error();
                tracing::debug!(%error, "udp send failed");
                sent += 1;
            } else {
                sent += usize::try_from(result).unwrap_or(1);
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod portable {
    use super::*;
    use std::io;
    use std::net::SocketAddr;

    pub(crate) struct Peers {
        addresses: Vec<Option<SocketAddr>>,
    }

    impl Peers {
        pub(crate) fn new() -> Peers {
            Peers {
                addresses: vec![None; BATCH],
            }
        }
    }

    impl Peers {
        pub(crate) fn address(&self, index: usize) -> Option<std::net::IpAddr> {
            self.addresses
                .get(index)
                .copied()
                .flatten()
                .map(|peer| peer.ip())
        }
    }

    pub(crate) fn receive(socket: &UdpSocket, batch: &mut Batch) -> io::Result<usize> {
        let (length, peer) = socket.recv_from(&mut batch.queries[..RECEIVE_BYTES])?;
        batch.query_lengths[0] = length;
        batch.peers.addresses[0] = Some(peer);
        batch.reply_lengths[0] = 0;
        batch.received = 1;
        Ok(1)
    }

    pub(crate) fn send(socket: &UdpSocket, batch: &mut Batch) {
        if let (Some(peer), length) = (batch.peers.addresses[0], batch.reply_lengths[0]) {
            if length > 0 {
                if let Err(error) = socket.send_to(&batch.replies[..length], peer) {
                    tracing::debug!(%error, %peer, "udp send failed");
                }
            }
        }
    }
}

#[cfg(target_os = "linux")]
pub(crate) use linux::{receive, send, Peers};
#[cfg(not(target_os = "linux"))]
pub(crate) use portable::{receive, send, Peers};
