//! `chattrd backup <file>` while the server runs, then `chattrd restore <file>` into a fresh
//! data directory and a start on it: accounts, registered channels (op list, bans, topic),
//! history, stored tokens and the cloaking key come back; what was said after the backup does
//! not. A restore refuses a directory holding data or in use, and a failed backup leaves no file
//! (one from a server that stops sending fails at the send timeout).
//! A backup of the message layout from before the history table comes back with its history.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::common::{Client, SECRET, WAIT};
use crate::process::{connect, printed as said, run_chattrd, tempdir, Process};
use std::os::unix::fs::PermissionsExt;

const PW: &str = "backup-proof-password";
const LEGACY_TOKEN: &str = "legacy-token-kept-in-the-store-42";

/// `chattrd <args>` on the store in `dir`, reaching a running server at `addr`.
async fn chattrd_cmd(dir: &Path, addr: &str, args: &[&str]) -> Output {
    run_chattrd(dir, &[("CHATTR_ADDR", addr)], args).await
}

async fn history_texts(client: &mut Client, channel: &str) -> Vec<String> {
    client.cmd(&format!("/join {channel}")).await;
    let history = client.expect("history").await;
    history["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_backup_taken_while_chatting_restores_into_a_fresh_store() {
    let (original, restored) = (tempdir(), tempdir().join("restored"));
    let dump = original.with_extension("surql");
    let dump_arg = dump.to_str().unwrap();
    let mut first = Process::start(&original).await.expect("start");
    let mut alice = connect(&first.addr, "alice").await;
    alice.nick = "alice".into();
    let cloak = {
        alice.cmd("/whois alice").await;
        alice.expect("whois").await;
        let mut watcher = connect(&first.addr, "watcher").await;
        watcher.cmd("/whois alice").await;
        watcher.expect("whois").await["host"].as_str().unwrap().to_owned()
    };
    alice.register(PW).await;
    alice.join("#club").await;
    alice.cmd("/celery register #club").await;
    alice.notice("Celery").await;
    alice.cmd("/ban #club mallory!*@*").await;
    alice.expect("banned").await;
    alice.cmd("/topic #club kept in the backup").await;
    alice.expect("topic").await;
    for text in ["first", "second"] {
        alice.say("#club", text).await;
        alice.expect("message").await;
    }
    let bound = reqwest::get(first.url(&format!("/gettoken/bob/{LEGACY_TOKEN}/{SECRET}"))).await.unwrap();
    assert_eq!(bound.text().await.unwrap(), LEGACY_TOKEN);

    // Backed up by the running server (the command cannot open its store), with the token the
    // server wrote into its data directory for its own user alone.
    let token_file = original.join("backup.token");
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    let backup = chattrd_cmd(&original, &first.addr, &["backup", dump_arg]).await;
    assert!(backup.status.success(), "{}", said(&backup));
    assert_eq!(std::fs::metadata(&dump).unwrap().permissions().mode() & 0o777, 0o600, "a backup is a secret");
    let text = std::fs::read_to_string(&dump).unwrap();
    assert!(text.contains("DEFINE TABLE history") && text.contains("kept in the backup"), "{text}");
    // The app's shared secret does not read the store; the token does.
    let get = |auth: String| reqwest::Client::new().get(first.url("/api/backup")).bearer_auth(auth).send();
    assert_eq!(get(SECRET.to_owned()).await.unwrap().status(), 401);
    let token = std::fs::read_to_string(&token_file).unwrap();
    let direct = get(token.clone()).await.unwrap();
    assert_eq!(direct.status(), 200);
    assert!(direct.text().await.unwrap().contains("kept in the backup"));
    // Refused (a token that is not the server's): no file is left behind.
    std::fs::write(&token_file, "not-the-token").unwrap();
    let refused_dump = original.with_extension("refused.surql");
    let refused = chattrd_cmd(&original, &first.addr, &["backup", refused_dump.to_str().unwrap()]).await;
    assert!(!refused.status.success());
    assert!(said(&refused).contains("401"), "{}", said(&refused));
    let leftovers: Vec<_> = std::fs::read_dir(original.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains("refused"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::write(&token_file, token).unwrap();

    // Said after the backup: not in it.
    alice.say("#club", "after the backup").await;
    alice.expect("message").await;
    assert_eq!(first.terminate().await.code(), Some(0));

    let restore = chattrd_cmd(&restored, "127.0.0.1:0", &["restore", dump_arg]).await;
    assert!(restore.status.success(), "{}", said(&restore));
    let again = chattrd_cmd(&restored, "127.0.0.1:0", &["restore", dump_arg]).await;
    assert!(!again.status.success());
    assert!(said(&again).contains("already holds data"), "{}", said(&again));

    let mut second = Process::start(&restored).await.expect("starts on the restored store");
    let mut alice = connect(&second.addr, "alice-again").await;
    alice.nick = "alice-again".into();
    alice.identify("alice", PW).await;
    assert_eq!(history_texts(&mut alice, "#club").await, ["first", "second"]);
    let mut watcher = connect(&second.addr, "watcher").await;
    watcher.cmd("/whois alice").await;
    assert_eq!(watcher.expect("whois").await["host"], cloak.as_str(), "the same address, the same cloak");
    watcher.cmd("/join #club").await;
    let topic = watcher.expect("topic").await;
    assert_eq!(topic["topic"], "kept in the backup");
    let members: Value = watcher.expect("members").await;
    let founder = members["members"].as_array().unwrap().iter().find(|m| m["nick"] == "alice").cloned();
    assert_eq!(founder.map(|m| m["op"].clone()), Some(Value::Bool(true)), "{members}");
    let mut mallory = connect(&second.addr, "mallory").await;
    mallory.cmd("/join #club").await;
    mallory.expect_error("banned").await;
    let user = reqwest::get(second.url(&format!("/getuser/{LEGACY_TOKEN}"))).await.unwrap();
    assert_eq!(user.text().await.unwrap(), "bob");

    // The running server's directory cannot be restored into; once stopped, the command reads
    // the store itself.
    let busy = chattrd_cmd(&restored, &second.addr, &["restore", dump_arg]).await;
    assert!(said(&busy).contains("in use"), "{}", said(&busy));
    assert_eq!(second.terminate().await.code(), Some(0));
    let offline_dump = original.with_extension("offline.surql");
    let offline = chattrd_cmd(&restored, "127.0.0.1:1", &["backup", offline_dump.to_str().unwrap()]).await;
    assert!(offline.status.success(), "{}", said(&offline));
    assert!(std::fs::read_to_string(&offline_dump).unwrap().contains("kept in the backup"));
    for path in [&original, &restored.parent().unwrap().to_path_buf()] {
        let _ = std::fs::remove_dir_all(path);
    }
    for file in [&dump, &offline_dump] {
        let _ = std::fs::remove_file(file);
    }
}

#[tokio::test]
async fn a_dump_that_does_not_load_leaves_no_store_behind() {
    let dir = tempdir();
    let target = dir.join("store");
    let garbage = dir.join("garbage.surql");
    std::fs::write(&garbage, "THIS IS NOT SURREALQL;").unwrap();
    let failed = chattrd_cmd(&target, "127.0.0.1:0", &["restore", garbage.to_str().unwrap()]).await;
    assert!(!failed.status.success(), "{}", said(&failed));
    let left: Vec<_> =
        std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    assert_eq!(left, ["garbage.surql"], "neither the target nor the half-loaded store is left");
    let missing = chattrd_cmd(&target, "127.0.0.1:0", &["restore", "/nonexistent/backup.surql"]).await;
    assert!(!missing.status.success());
    assert!(said(&missing).contains("/nonexistent/backup.surql"), "{}", said(&missing));
    // Nothing to back up: no store there and no server running.
    let nothing =
        chattrd_cmd(&target, "127.0.0.1:1", &["backup", dir.join("x.surql").to_str().unwrap()]).await;
    assert!(!nothing.status.success());
    assert!(said(&nothing).contains("no store"), "{}", said(&nothing));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_backup_from_a_server_that_stops_sending_fails_at_the_send_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The data directory as a running chattrd holds it: locked, with its backup token.
    let dir = tempdir();
    let lock = std::fs::File::create(dir.join("LOCK")).unwrap();
    lock.try_lock().unwrap();
    std::fs::write(dir.join("backup.token"), "the-token").unwrap();
    // A server that starts the dump, then sends nothing more (its store stuck).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stuck = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            if socket.read(&mut byte).await.unwrap() == 0 {
                return;
            }
            head.push(byte[0]);
        }
        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/sql\r\ntransfer-encoding: chunked\r\n\r\n\
                      10\r\nOPTION IMPORT;\n\n\r\n";
        socket.write_all(answer.as_bytes()).await.unwrap();
        std::future::pending::<()>().await;
    });
    let file = dir.join("stuck.surql");
    let env = [("CHATTR_ADDR", addr.as_str()), ("CHATTR_SEND_TIMEOUT", "500ms")];
    let args = ["backup", file.to_str().unwrap()];
    let failed = tokio::time::timeout(WAIT, run_chattrd(&dir, &env, &args))
        .await
        .expect("the backup gives up on a server that stops sending");
    assert!(!failed.status.success(), "{}", said(&failed));
    assert!(said(&failed).contains("timed out"), "{}", said(&failed));
    let left: Vec<_> =
        std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    assert!(!left.iter().any(|name| name.contains("stuck")), "no dump is left: {left:?}");
    stuck.abort();
    drop(lock);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A backup from a store of before the `history` table (messages as `message:<id>` records,
/// with an index on the conversation and id): restored, its messages are moved into the history
/// table at the first start, and served as history, in order; new messages are numbered above
/// them.
#[tokio::test]
async fn a_backup_of_the_old_message_layout_restores_with_its_history() {
    let dir = tempdir().join("restored");
    let dump = dir.with_extension("surql");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let row = |ms: u64, text: &str| {
        let id = ms << 10;
        format!(
            "{{ id: message:{id}, conv: '#old', mid: {id}, ts: {ms}, sender: 'alice', target: '#old', \
             text: '{text}', action: false }}"
        )
    };
    let old_rows = [row(now - 120_000, "said before the upgrade"), row(now - 60_000, "and once more")];
    std::fs::write(
        &dump,
        format!(
            "OPTION IMPORT;
             DEFINE TABLE message SCHEMAFULL;
             DEFINE FIELD conv ON message TYPE string; DEFINE FIELD mid ON message TYPE int;
             DEFINE FIELD ts ON message TYPE int; DEFINE FIELD sender ON message TYPE string;
             DEFINE FIELD target ON message TYPE string; DEFINE FIELD text ON message TYPE string;
             DEFINE FIELD action ON message TYPE bool; DEFINE FIELD bot ON message TYPE option<bool>;
             DEFINE INDEX message_conv ON message FIELDS conv, mid;
             INSERT [{}];",
            old_rows.join(", ")
        ),
    )
    .unwrap();
    let restore = chattrd_cmd(&dir, "127.0.0.1:0", &["restore", dump.to_str().unwrap()]).await;
    assert!(restore.status.success(), "{}", said(&restore));

    let server = Process::start(&dir).await.expect("starts on the restored store");
    let mut bob = connect(&server.addr, "bob").await;
    assert_eq!(history_texts(&mut bob, "#old").await, ["said before the upgrade", "and once more"]);
    bob.say("#old", "after the upgrade").await;
    let echo = bob.expect("message").await;
    let id = echo["id"].as_u64().unwrap();
    assert!(id > (now - 60_000) << 10, "a new id ({id}) above the moved ones");
    let mut cy = connect(&server.addr, "cy").await;
    assert_eq!(
        history_texts(&mut cy, "#old").await,
        ["said before the upgrade", "and once more", "after the upgrade"]
    );
}
