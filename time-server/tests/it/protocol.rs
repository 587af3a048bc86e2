//! The wire protocol, in process: reply on accept, half-close, drain.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use crate::support::in_process_server;

fn read_to_end(stream: &mut TcpStream) -> std::io::Result<String> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

#[test]
fn a_client_that_sends_nothing_still_gets_the_reply() {
    let server = in_process_server(1);
    let addr = server.addrs()[0];
    let mut stream = TcpStream::connect(addr).expect("connects");
    let reply = read_to_end(&mut stream).expect("reads the reply");
    assert!(reply.starts_with(&format!("{addr}: ")), "{reply:?}");
    assert!(
        reply.ends_with('\n') && reply.lines().count() == 1,
        "{reply:?}"
    );
}

#[test]
fn a_thousand_sequential_requests_see_no_reset_and_no_short_reply() {
    let server = in_process_server(1);
    let addr = server.addrs()[0];
    let (mut resets, mut short) = (0, 0);
    for _ in 0..1000 {
        let mut stream = TcpStream::connect(addr).expect("connects");
        // As the post's client: write, then read until EOF, no half-close.
        if stream.write_all(b"timestamp").is_err() {
            resets += 1;
            continue;
        }
        match read_to_end(&mut stream) {
            Ok(reply) if reply.starts_with(&format!("{addr}: ")) && reply.ends_with('\n') => {}
            Ok(_) => short += 1,
            Err(_) => resets += 1,
        }
    }
    assert_eq!((resets, short), (0, 0), "resets, short replies");
}

#[test]
fn a_silent_idle_client_does_not_delay_another_client() {
    let server = in_process_server(1);
    let addr = server.addrs()[0];
    // Holds its connection open and never closes: the server drains it
    // for up to its drain timeout, on that connection's thread only.
    let idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(addr).expect("connects"))
        .collect();
    let mut other = TcpStream::connect(addr).expect("connects");
    other.shutdown(Shutdown::Write).expect("half-closes");
    let started = std::time::Instant::now();
    let reply = read_to_end(&mut other).expect("reads the reply");
    assert!(reply.starts_with(&format!("{addr}: ")));
    // Generous: the drain timeout of the idle ones is 2 s.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );
    drop(idle);
}
