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

/// After the reply, how long the server still took a byte every 2 ms
/// before it answered one with a reset (it had closed): how long it read
/// and discarded what the client sent.
fn read_after_reply(addr: std::net::SocketAddr) -> Duration {
    let mut stream = TcpStream::connect(addr).expect("connects");
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut line = [0u8; 256];
    assert!(matches!(stream.read(&mut line), Ok(n) if n > 0), "a reply");
    let replied = std::time::Instant::now();
    let mut last_taken = replied;
    while replied.elapsed() < Duration::from_secs(10) {
        if stream.write(b"x").is_err() {
            return last_taken - replied;
        }
        last_taken = std::time::Instant::now();
        // The probe's pace, not a wait for anything.
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("still read 10 s after the reply");
}

/// The protocol reads what a client sends after the reply for at most
/// 2 s: clients whose deadlines fall at any moment are let go at theirs,
/// not at the next periodic check (which let some go up to 100 ms late).
#[test]
fn clients_that_keep_sending_are_let_go_at_their_two_second_deadline() {
    let server = in_process_server(1);
    let addr = server.addrs()[0];
    let read: Vec<Duration> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..20u64)
            .map(|i| {
                scope.spawn(move || {
                    // Deadlines spread over 100 ms, not a wait for anything.
                    std::thread::sleep(Duration::from_millis(i * 5));
                    read_after_reply(addr)
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|client| client.join().expect("a client"))
            .collect()
    });
    let mut sorted = read.clone();
    sorted.sort();
    let (shortest, median, longest) = (
        sorted[0],
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1],
    );
    // Not let go early either: what they send is read for the 2 s (less
    // the moment the reply took to reach them).
    assert!(
        shortest >= Duration::from_millis(1500),
        "a client was let go {shortest:?} after its reply: {read:?}"
    );
    eprintln!("read after the reply: median {median:?}, at most {longest:?}: {read:?}");
    // At their deadline: half of them within 25 ms of it (a check every
    // 100 ms let half of them go 50 ms late or more), and every one within
    // a margin for a busy machine, whose scheduler may hold the thread
    // that lets them go.
    assert!(
        median <= Duration::from_millis(2025),
        "half the clients were read {median:?} or more after their reply: {read:?}"
    );
    assert!(
        longest <= Duration::from_millis(2500),
        "a client was read {longest:?} after its reply: {read:?}"
    );
}
