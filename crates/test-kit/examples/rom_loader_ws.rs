//! The ROM-loader simulator behind a WebSocket on loopback, for the browser page's test: a
//! fake `navigator.serial` port in the page sends and receives the serial bytes as binary
//! WebSocket messages, so esptool-js runs its real protocol against the same simulator the
//! CLI's flashing tests use.
//!
//!   rom_loader_ws CHIP [--flash-at OFFSET=FILE]... [--drop-after FRAMES] --dump FILE
//!
//! Prints `ws://127.0.0.1:PORT` on the first line of stdout, serves connections one after the
//! other (esptool-js closes and reopens the port to change the baud rate), and when stdin
//! says `finish` (or closes) writes the simulated flash to the dump file and prints `dumped`.
//! A port that is reopened keeps the same simulated chip, as a USB serial port would.

#[cfg(not(unix))]
fn main() {
    eprintln!("rom_loader_ws needs a Unix pseudo-terminal");
    std::process::exit(2);
}

#[cfg(unix)]
fn main() {
    unix::main();
}

#[cfg(unix)]
mod unix {
    use std::fs::OpenOptions;
    use std::io::{BufRead, ErrorKind, Read, Write};
    use std::net::TcpListener;
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    use thinger_patch_test_kit::rom_loader::{Chip, Config, Sim};
    use tungstenite::{Message, accept};

    fn usage() -> ! {
        eprintln!(
            "usage: rom_loader_ws esp32c3|esp8266 [--flash-at OFFSET=FILE]... [--drop-after FRAMES] --dump FILE"
        );
        std::process::exit(2);
    }

    pub fn main() {
        let mut args = std::env::args().skip(1);
        let chip = match args.next().as_deref() {
            Some("esp32c3") => Chip::Esp32c3,
            Some("esp8266") => Chip::Esp8266,
            _ => usage(),
        };
        let mut config = Config::new(chip);
        let mut dump = None;
        while let Some(a) = args.next() {
            match a.as_str() {
                "--flash-at" => {
                    let spec = args.next().unwrap_or_else(|| usage());
                    let (at, file) = spec.split_once('=').unwrap_or_else(|| usage());
                    let at = usize::from_str_radix(at.trim_start_matches("0x"), 16)
                        .unwrap_or_else(|_| usage());
                    let bytes = std::fs::read(file).expect("reading --flash-at FILE");
                    config = config.with_flash(at, &bytes);
                }
                "--drop-after" => {
                    let n = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| usage());
                    config.drop_after_data_frames = Some(n);
                }
                "--dump" => dump = args.next(),
                _ => usage(),
            }
        }
        let dump = dump.unwrap_or_else(|| usage());
        let sim = Sim::start(config);
        let mut port = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
            .open(sim.port())
            .expect("opening the simulator's pty");

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        println!("ws://{}", listener.local_addr().expect("address"));
        std::io::stdout().flush().ok();

        let finish = Arc::new(AtomicBool::new(false));
        {
            let finish = finish.clone();
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    if line.map_or(true, |l| l.trim() == "finish") {
                        break;
                    }
                }
                finish.store(true, Ordering::SeqCst);
            });
        }

        let mut buf = [0u8; 4096];
        // Set when the simulator dropped the line (`--drop-after`): like a pulled cable, the
        // open connection closes and the port cannot be opened again.
        let mut hung_up = false;
        while !finish.load(Ordering::SeqCst) {
            let stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                Err(e) => panic!("accept: {e}"),
            };
            if hung_up {
                drop(stream);
                continue;
            }
            stream.set_nonblocking(false).ok();
            let Ok(mut ws) = accept(stream) else { continue };
            ws.get_ref()
                .set_nonblocking(true)
                .expect("nonblocking socket");
            // One loop: page -> pty, pty -> page, until the page closes the port.
            'conn: loop {
                let mut idle = true;
                match ws.read() {
                    Ok(Message::Binary(data)) => {
                        idle = false;
                        let mut rest: &[u8] = &data;
                        while !rest.is_empty() {
                            match port.write(rest) {
                                Ok(n) => rest = &rest[n..],
                                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                                    std::thread::sleep(Duration::from_millis(1));
                                }
                                Err(e) if pty_hung_up(&e) => {
                                    hung_up = true;
                                    close_quietly(&mut ws);
                                    break 'conn;
                                }
                                Err(e) => panic!("writing to the pty: {e}"),
                            }
                        }
                    }
                    Ok(Message::Close(_)) => break 'conn,
                    Ok(_) => idle = false,
                    Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => break 'conn,
                }
                match port.read(&mut buf) {
                    Ok(n) if n > 0 => {
                        idle = false;
                        match ws.send(Message::binary(buf[..n].to_vec())) {
                            Ok(()) => {}
                            // Queued; flushed below or on the next round.
                            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                            }
                            Err(_) => break 'conn,
                        }
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) if pty_hung_up(&e) => {
                        hung_up = true;
                        close_quietly(&mut ws);
                        break 'conn;
                    }
                    Err(e) => panic!("reading the pty: {e}"),
                }
                match ws.flush() {
                    Ok(()) => {}
                    Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => break 'conn,
                }
                if finish.load(Ordering::SeqCst) {
                    break 'conn;
                }
                if idle {
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
        }
        drop(port);
        let loader = sim.finish();
        std::fs::write(&dump, &loader.flash).expect("writing the dump");
        println!("dumped");
    }

    /// EIO on the pty: the simulator dropped the line (`--drop-after`), like a pulled cable,
    /// whether the page was writing or reading at that moment (it holds the other end otherwise).
    fn pty_hung_up(e: &std::io::Error) -> bool {
        e.raw_os_error() == Some(nix::libc::EIO)
    }

    /// Closes the page's connection; it may be gone already.
    fn close_quietly(ws: &mut tungstenite::WebSocket<std::net::TcpStream>) {
        let _ = ws.close(None);
        let _ = ws.flush();
    }
}
