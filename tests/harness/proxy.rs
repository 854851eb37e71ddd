//! A small TCP proxy for fault injection: the fleet talks to PostgreSQL or RabbitMQ through
//! it, and a test can cut every open connection (as a restart or a network reset would) or
//! stall traffic, without touching the machine's shared services.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
    /// `127.0.0.1:<port>` to connect to instead of the target.
    pub addr: String,
    cut: watch::Sender<u64>,
    stalled: Arc<AtomicBool>,
    blocked: Arc<AtomicBool>,
    /// Connections after this many are held (see [`Proxy::hold_after`]).
    hold_after: Arc<AtomicUsize>,
    holding: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `target` (e.g. `127.0.0.1:5432`) on a free loopback port.
    pub async fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (cut, _) = watch::channel(0u64);
        let stalled = Arc::new(AtomicBool::new(false));
        let blocked = Arc::new(AtomicBool::new(false));
        let hold_after = Arc::new(AtomicUsize::new(usize::MAX));
        let (holding, _) = watch::channel(false);
        let (target, cuts, stall, block) = (target.to_string(), cut.clone(), stalled.clone(), blocked.clone());
        let (hold, holds) = (hold_after.clone(), holding.clone());
        let task = tokio::spawn(async move {
            let mut accepted = 0usize;
            while let Ok((client, _)) = listener.accept().await {
                if block.load(Ordering::SeqCst) {
                    continue; // refused: the connection is dropped at once
                }
                accepted += 1;
                let held = accepted > hold.load(Ordering::SeqCst);
                let (target, mut cut, stall, mut holding) =
                    (target.clone(), cuts.subscribe(), stall.clone(), holds.subscribe());
                tokio::spawn(async move {
                    if held {
                        // Open but silent until released: a handshake that never gets an answer.
                        let _ = holding.wait_for(|h| !*h).await;
                    }
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = pipe(client, server, stall) => {}
                        _ = cut.changed() => {} // dropping both sockets resets the connection
                    }
                });
            }
        });
        Proxy {
            addr,
            cut,
            stalled,
            blocked,
            hold_after,
            holding,
            task,
        }
    }

    /// From now on, connections after the first `n` this proxy accepted are accepted but get
    /// no answer (no byte goes either way) until [`Proxy::release`].
    pub fn hold_after(&self, n: usize) {
        self.holding.send_replace(true);
        self.hold_after.store(n, Ordering::SeqCst);
    }

    /// Held connections are forwarded from now on, and new ones are no longer held.
    pub fn release(&self) {
        self.hold_after.store(usize::MAX, Ordering::SeqCst);
        self.holding.send_replace(false);
    }

    /// Closes every connection open right now; new ones are accepted as usual.
    pub fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// While blocked, the target is unreachable: open connections are cut and new ones
    /// dropped at once.
    pub fn block(&self, blocked: bool) {
        self.blocked.store(blocked, Ordering::SeqCst);
        if blocked {
            self.cut();
        }
    }

    /// Stops (true) or resumes (false) forwarding bytes on every connection.
    pub fn stall(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

async fn pipe(client: TcpStream, server: TcpStream, stalled: Arc<AtomicBool>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let s1 = stalled.clone();
    let up = async move { copy(&mut cr, &mut sw, &s1).await };
    let down = async move { copy(&mut sr, &mut cw, &stalled).await };
    tokio::select! { _ = up => {}, _ = down => {} }
}

async fn copy(from: &mut (impl AsyncReadExt + Unpin), to: &mut (impl AsyncWriteExt + Unpin), stalled: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
