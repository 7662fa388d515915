//! Stopping: SIGTERM lets requests already in flight finish, takes no new ones, and the
//! process exits cleanly.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::helpers::{Backend, TestDb};
use crate::process::{Instance, free_port};

#[test]
fn sigterm_drains_requests_in_flight_then_exits_cleanly() {
    // Arrange: a token request whose body is only half sent.
    let db = TestDb::new(&Backend::Sqlite);
    let master_key = latchkey::crypto::MasterKey::generate().encode();
    let mut server = Instance::start(&db, &master_key, free_port(), &[]);
    let body = "grant_type=client_credentials&client_id=nobody&client_secret=wrong";
    let mut in_flight = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    in_flight.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        in_flight,
        "POST /oauth2/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..10]
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));

    // Act: stop the server, then finish the request.
    server.terminate();
    std::thread::sleep(Duration::from_millis(300));
    in_flight.write_all(&body.as_bytes()[10..]).unwrap();
    let mut answer = String::new();
    in_flight.read_to_string(&mut answer).unwrap();

    // Assert: the request was answered in full, nothing new is taken, the exit is clean.
    assert!(answer.starts_with("HTTP/1.1 401"), "the request in flight is answered: {answer:?}");
    assert!(answer.contains("invalid_client"), "{answer}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    assert!(TcpStream::connect(("127.0.0.1", server.port)).is_err(), "no new connections after the stop");
}
