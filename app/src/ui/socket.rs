//! The browser's WebSocket link to `chattrd` (gloo-net). Compiled only into the wasm build; on
//! the server [`Link`] is an empty placeholder so components have one shape on both sides.

use crate::protocol::ClientFrame;
#[cfg(feature = "hydrate")]
use crate::protocol::ServerEvent;

#[cfg(feature = "hydrate")]
pub type Link = futures::channel::mpsc::UnboundedSender<String>;
#[cfg(not(feature = "hydrate"))]
pub type Link = ();

/// Queues one frame for sending; a closed link drops it (the status line already says offline).
pub fn send(link: &Link, frame: &ClientFrame) {
    #[cfg(feature = "hydrate")]
    if let Ok(text) = serde_json::to_string(frame) {
        let _ = link.unbounded_send(text);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (link, frame);
}

/// Stops a link: the writer ends and the socket closes.
pub fn close(link: &Link) {
    #[cfg(feature = "hydrate")]
    link.close_channel();
    #[cfg(not(feature = "hydrate"))]
    let _ = link;
}

/// The `/ws` address of the server that served this page.
#[cfg(feature = "hydrate")]
pub fn socket_url() -> String {
    let location = web_sys::window().map(|w| w.location());
    let host = location.as_ref().and_then(|l| l.host().ok()).unwrap_or_default();
    let secure = location.and_then(|l| l.protocol().ok()).is_some_and(|p| p == "https:");
    format!("{}://{host}/ws", if secure { "wss" } else { "ws" })
}

/// Opens the socket; `on_event` gets every server event, `on_close` the close reason (empty
/// when the connection just dropped) once the link ended.
#[cfg(feature = "hydrate")]
pub(crate) fn connect(
    url: &str,
    on_event: impl Fn(ServerEvent) + 'static,
    on_close: impl Fn(String) + 'static,
) -> Result<Link, String> {
    use futures::{SinkExt, StreamExt};
    use gloo_net::websocket::{futures::WebSocket, Message, WebSocketError};

    let socket = WebSocket::open(url).map_err(|e| e.to_string())?;
    let (mut write, mut read) = socket.split();
    let (link, mut outgoing) = futures::channel::mpsc::unbounded::<String>();
    // Frames go out at the pace the server's `welcome` allows (see `pace`).
    let pacer = std::rc::Rc::new(std::cell::Cell::new(super::pace::Pacer::default()));
    let writers = pacer.clone();
    leptos::task::spawn_local(async move {
        let mut waiting = Vec::new();
        loop {
            if waiting.is_empty() {
                let Some(text) = outgoing.next().await else { break };
                waiting.push(text);
            }
            loop {
                let mut pacer = writers.get();
                let taken = pacer.take(js_sys::Date::now());
                writers.set(pacer);
                match taken {
                    Ok(()) => break,
                    Err(ms) => sleep(ms).await,
                }
            }
            // What came meanwhile: a quit goes before what waits ahead of it.
            while let Ok(text) = outgoing.try_recv() {
                waiting.push(text);
            }
            super::pace::skip_to_quit(&mut waiting);
            let text = waiting.remove(0);
            if write.send(Message::Text(text)).await.is_err() {
                break;
            }
        }
        let _ = write.close().await;
    });
    leptos::task::spawn_local(async move {
        let reason = loop {
            match read.next().await {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(event) = serde_json::from_str::<ServerEvent>(&text) {
                        // (Not a cluster's unasked one, without `resume`: the connection and
                        // its allowance go on.)
                        if let ServerEvent::Welcome { limits, resume: Some(_), .. } = &event {
                            let mut started = pacer.get();
                            started.start(limits, js_sys::Date::now());
                            pacer.set(started);
                        }
                        on_event(event);
                    }
                }
                Some(Ok(Message::Bytes(_))) => {}
                Some(Err(WebSocketError::ConnectionClose(close))) => break close.reason,
                _ => break String::new(),
            }
        };
        on_close(reason);
    });
    Ok(link)
}

/// Resolves after `ms` milliseconds.
#[cfg(feature = "hydrate")]
async fn sleep(ms: f64) {
    use futures::StreamExt;
    // (A channel of strings, as the link is: one channel's code in the wasm for both; and a
    // boxed callback, as the reconnect's timer is.)
    let (done, mut wait) = futures::channel::mpsc::unbounded::<String>();
    let done: Box<dyn FnOnce()> = Box::new(move || drop(done));
    leptos::prelude::set_timeout(done, std::time::Duration::from_millis(ms.ceil() as u64));
    let _ = wait.next().await;
}
