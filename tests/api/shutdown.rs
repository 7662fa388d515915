//! Stopping: SIGTERM lets requests already in flight finish, takes no new ones, and the
//! process exits cleanly.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{Backend, TestDb};

/// The real binary serving `db` on a free port.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(db: &TestDb) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .arg("serve")
            .current_dir(dir.path())
            .env("LATCHKEY_DATABASE_URL", db.url())
            .env("LATCHKEY_MASTER_KEY", latchkey::crypto::MasterKey::generate().encode())
            .env("LATCHKEY_BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        let server = Self { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the server did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sigterm_drains_requests_in_flight_then_exits_cleanly() {
    // Arrange: a token request whose body is only half sent.
    let db = TestDb::new(&Backend::Sqlite);
    let mut server = Server::start(&db);
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
