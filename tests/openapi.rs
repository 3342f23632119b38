//! `docs/openapi.json` against the running server. For every documented operation, proptest
//! generates requests (well-formed and not: wrong secrets, bodies of any JSON or bytes, odd
//! names, undecodable paths) and each answer must carry a documented status, content type and
//! a body the documented schema accepts. A refused request changes nothing: a user named in
//! it is still free for a guest to take. A token the server hands out resolves to its user.

use std::collections::HashMap;
use std::sync::Mutex;

use jsonschema::{Draft, Validator};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{json, Value};
use unicode_normalization::char::is_combining_mark;
use unicode_security::confusable_detection::skeleton;

use app::protocol::names::{fold, validate_nick};
use app::protocol::ErrorCode;

use crate::common::{Client, TestServer, SECRET};

const SPEC: &str = include_str!("../docs/openapi.json");

/// The document, with a validator per (path, method, status) compiled on first use.
struct Spec {
    doc: Value,
    validators: Mutex<HashMap<String, std::sync::Arc<Validator>>>,
}

/// One answer from the server.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

impl Spec {
    fn load() -> Self {
        Self {
            doc: serde_json::from_str(SPEC).expect("docs/openapi.json is JSON"),
            validators: Mutex::default(),
        }
    }

    /// `value`, or what its `$ref` points to within the document.
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(pointer) => self.doc.pointer(pointer.trim_start_matches('#')).expect("the $ref resolves"),
            None => value,
        }
    }

    fn operation(&self, path: &str, method: &str) -> &Value {
        self.doc["paths"][path].get(method).unwrap_or_else(|| panic!("{method} {path} is not documented"))
    }

    /// Whether `answer` is one that the document allows for this operation.
    fn check(&self, path: &str, method: &str, answer: &Answer) -> Result<(), String> {
        let status = answer.status.to_string();
        let response =
            self.operation(path, method)["responses"].get(&status).map(|r| self.resolve(r)).ok_or_else(
                || format!("{method} {path} answered the undocumented status {status}: {answer:?}"),
            )?;
        let (media, content) = response["content"]
            .as_object()
            .and_then(|c| c.iter().next())
            .ok_or_else(|| format!("{method} {path} {status} documents no content"))?;
        if !answer.content_type.starts_with(media.as_str()) {
            return Err(format!(
                "{method} {path} {status}: content type {:?}, documented {media}",
                answer.content_type
            ));
        }
        let instance = if media == "application/json" {
            serde_json::from_str(&answer.body)
                .map_err(|e| format!("{method} {path} {status}: not JSON ({e})"))?
        } else {
            Value::String(answer.body.clone())
        };
        let validator = self.validator(&format!("{method} {path} {status}"), &content["schema"]);
        validator
            .validate(&instance)
            .map_err(|e| format!("{method} {path} {status}: {instance} does not match the schema: {e}"))
    }

    /// A validator for `schema`, whose `$ref`s point into the document's components.
    fn validator(&self, key: &str, schema: &Value) -> std::sync::Arc<Validator> {
        let mut validators = self.validators.lock().unwrap();
        validators
            .entry(key.to_owned())
            .or_insert_with(|| {
                let root = json!({ "components": self.doc["components"], "allOf": [schema] });
                let validator = jsonschema::options()
                    .with_draft(Draft::Draft202012)
                    .build(&root)
                    .unwrap_or_else(|e| panic!("the schema for {key} compiles: {e}"));
                std::sync::Arc::new(validator)
            })
            .clone()
    }
}

/// Percent-encodes everything but unreserved characters, for a path segment.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let res = request.send().await.expect("the server answers");
    let status = res.status().as_u16();
    let content_type =
        res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    Answer { status, content_type, body: res.text().await.unwrap_or_default() }
}

/// A user name: mostly valid nicks, plus anything at all, reserved names and overlong ones.
fn user() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z_][A-Za-z0-9_-]{0,12}",
        2 => ".{0,40}",
        1 => Just("Potato".to_owned()),
        1 => "[a-z]{31,40}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        let key = prop_oneof![Just("user".to_owned()), Just("ttl_secs".to_owned()), ".{0,8}"];
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::from),
            btree_map(key, inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A request body for the token and revoke endpoints.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let ttl = prop_oneof![
        3 => Just(None),
        3 => (1u64..1_000_000).prop_map(|t| Some(Value::from(t))),
        1 => json_value().prop_map(Some),
    ];
    prop_oneof![
        6 => (user(), ttl).prop_map(|(user, ttl)| {
            let mut body = json!({ "user": user });
            if let Some(ttl) = ttl {
                body["ttl_secs"] = ttl;
            }
            body.to_string().into_bytes()
        }),
        2 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => vec(any::<u8>(), 0..64),
        1 => Just(vec![b' '; 20 * 1024]),
    ]
}

/// The user a request body names, if it is a JSON object with a string `user`.
fn named_user(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body).ok()?.get("user")?.as_str().map(str::to_owned)
}

fn authorization() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(Some(format!("Bearer {SECRET}"))),
        1 => Just(None),
        1 => "[ -~]{0,30}".prop_map(Some),
        1 => Just(Some(format!("Bearer {SECRET}x"))),
    ]
}

/// A path segment as sent, and the text it decodes to (`None`: bytes that are not UTF-8).
/// Never empty, `.` or `..`: URLs have no such segments (an empty one is another path, and
/// clients resolve dot segments away, even percent-encoded).
fn raw_segment(text: impl Strategy<Value = String>) -> impl Strategy<Value = (String, Option<String>)> {
    let segment_text = text.prop_filter("a path segment", |s| !["", ".", ".."].contains(&s.as_str()));
    prop_oneof![
        8 => segment_text.prop_map(|s| (segment(&s), Some(s))),
        1 => Just(("%FF%FE".to_owned(), None)),
        1 => Just(("%C3%28".to_owned(), None)),
    ]
}

/// Runs `cases` generated cases of `test` against one server.
fn fuzz<S: Strategy>(cases: u32, strategy: S, test: impl Fn(&Probe, S::Value) -> Result<(), String>)
where
    S::Value: std::fmt::Debug,
{
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = rt.block_on(TestServer::start());
    let probe = Probe {
        rt,
        server,
        spec: Spec::load(),
        http: reqwest::Client::new(),
        issued: Mutex::default(),
        guests: Mutex::default(),
    };
    let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
    TestRunner::new(config)
        .run(&strategy, |case| test(&probe, case).map_err(TestCaseError::fail))
        .unwrap_or_else(|e| panic!("{e}"));
}

/// A server, the document, and what the server has handed out so far.
struct Probe {
    rt: tokio::runtime::Runtime,
    server: TestServer,
    spec: Spec,
    http: reqwest::Client,
    /// Users that got a token: their nicks (and look-alikes of them) are reserved from then on.
    issued: Mutex<LookAlikes>,
    /// Guests that proved a nick free, by folded nick; they stay connected.
    guests: Mutex<HashMap<String, (String, Client)>>,
}

impl Probe {
    fn post(&self, path: &str, auth: &Option<String>, body: &[u8]) -> Result<Answer, String> {
        self.post_to(path, path, auth, body)
    }

    /// A POST to `path`, an instance of the documented `template`.
    fn post_to(
        &self,
        template: &str,
        path: &str,
        auth: &Option<String>,
        body: &[u8],
    ) -> Result<Answer, String> {
        let mut request = self.http.post(self.server.url(path)).header("content-type", "application/json");
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let answer = self.rt.block_on(send(request.body(body.to_vec())));
        self.spec.check(template, "post", &answer)?;
        Ok(answer)
    }

    fn get(&self, template: &str, path: &str) -> Result<Answer, String> {
        self.get_as(template, path, &None)
    }

    fn get_as(&self, template: &str, path: &str, auth: &Option<String>) -> Result<Answer, String> {
        let mut request = self.http.get(self.server.url(path));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let answer = self.rt.block_on(send(request));
        self.spec.check(template, "get", &answer)?;
        Ok(answer)
    }

    /// Makes sure `watcher`, a guest, is online and was put in `#room`; `rejoin` asks again
    /// (it may have been kicked since).
    fn watcher_in_room(&self, rejoin: bool) {
        let watcher = self.guests.lock().unwrap().remove("watcher");
        let watcher = self.rt.block_on(async {
            match watcher {
                Some((nick, mut client)) => {
                    if rejoin {
                        client.send(json!({"type":"command","line":"/join #room"})).await;
                    }
                    (nick, client)
                }
                None => {
                    let mut client = self.server.guest("watcher").await;
                    client.join("#room").await;
                    ("watcher".to_owned(), client)
                }
            }
        });
        self.guests.lock().unwrap().insert("watcher".into(), watcher);
    }

    /// A token the server handed out resolves to `user` through `/getuser`.
    fn resolves_to(&self, token: &str, user: &str) -> Result<(), String> {
        let answer = self.get("/getuser/{token}", &format!("/getuser/{}", segment(token)))?;
        if (answer.status, answer.body.as_str()) != (200, user) {
            return Err(format!("the token for {user:?} resolves to {answer:?}"));
        }
        self.issued.lock().unwrap().insert(user);
        Ok(())
    }

    /// After a refused request naming `user`: unless the server gave that user a token
    /// earlier, the nick is still free for a guest (checked the first time a nick comes up;
    /// the guest then keeps it).
    fn still_free(&self, user: Option<&str>) -> Result<(), String> {
        let Some(user) = user.filter(|u| validate_nick(u).is_ok()) else {
            return Ok(());
        };
        let folded = fold(user);
        // A nick that is, or looks like, one given out already is not free, and rightly so.
        let guests_look_alike = {
            let guests = self.guests.lock().unwrap();
            let mut names = LookAlikes::default();
            for (name, _) in guests.values() {
                names.insert(name);
            }
            names.has_one_like(user)
        };
        if self.issued.lock().unwrap().has_one_like(user) || guests_look_alike {
            return Ok(());
        }
        let guest = self.rt.block_on(async {
            let mut guest = Client::connect(&self.server).await;
            guest.send(json!({"type":"auth","nick":user})).await;
            let welcome = guest.next_event().await;
            if welcome["type"] != "welcome" {
                return Err(format!("a refused request took the nick {user:?}: {welcome}"));
            }
            Ok(guest)
        })?;
        self.guests.lock().unwrap().insert(folded, (user.to_owned(), guest));
        Ok(())
    }
}

/// Names given out, and whether another name is one of them or looks like one, by the rule that
/// docs/protocol.md states (Connecting): the same folded form, or a confusable skeleton (Unicode
/// TS #39) in common, taken on the name lowercased (folded), uppercased and as written, with
/// combining marks left out.
#[derive(Default)]
struct LookAlikes {
    /// Folded name → the look-alike keys of the name last given out under it.
    names: HashMap<String, [String; 3]>,
}

impl LookAlikes {
    fn keys(name: &str) -> [String; 3] {
        let skeleton = |s: &str| -> String { skeleton(s).filter(|c| !is_combining_mark(*c)).collect() };
        [
            format!("l:{}", fold(&skeleton(&fold(name)))),
            format!("u:{}", skeleton(&name.to_uppercase())),
            format!("w:{}", fold(&skeleton(name))),
        ]
    }

    fn insert(&mut self, name: &str) {
        self.names.insert(fold(name), Self::keys(name));
    }

    fn has_one_like(&self, name: &str) -> bool {
        let keys = Self::keys(name);
        self.names.contains_key(&fold(name))
            || self.names.values().any(|theirs| theirs.iter().any(|k| keys.contains(k)))
    }
}

#[test]
fn the_document_names_only_real_error_codes() {
    let spec = Spec::load();
    let codes = spec.doc["components"]["schemas"]["Error"]["properties"]["code"]["enum"].as_array().unwrap();
    for code in codes {
        let code = code.as_str().unwrap();
        assert!(ErrorCode::ALL.iter().any(|c| c.as_str() == code), "{code} is no error code");
    }
}

#[test]
fn post_api_token_answers_as_documented() {
    fuzz(160, (authorization(), body()), |probe, (auth, body)| {
        let answer = probe.post("/api/token", &auth, &body)?;
        let user = named_user(&body);
        if answer.status == 200 {
            let token: Value = serde_json::from_str(&answer.body).unwrap();
            probe.resolves_to(token["token"].as_str().unwrap(), &user.unwrap())
        } else {
            probe.still_free(user.as_deref())
        }
    });
}

#[test]
fn post_api_revoke_answers_as_documented() {
    fuzz(120, (authorization(), body()), |probe, (auth, body)| {
        probe.post("/api/revoke", &auth, &body).map(drop)
    });
}

/// A body for `POST /api/messages`: mostly well-formed, to channels, to online and offline
/// nicks, from bots whose names are free, taken or invalid; plus anything at all.
fn message_body() -> impl Strategy<Value = Vec<u8>> {
    let target = prop_oneof![
        3 => "#[a-z]{1,8}",
        2 => Just("watcher".to_owned()),
        2 => user(),
        1 => ".{0,20}",
    ];
    let text = prop_oneof![4 => ".{1,60}", 1 => Just(String::new()), 1 => "[a-z]{4001,4100}"];
    let from =
        prop_oneof![4 => user().prop_map(Some), 1 => Just(Some("watcher".to_owned())), 1 => Just(None)];
    prop_oneof![
        6 => (target, text, from).prop_map(|(target, text, from)| {
            let mut body = json!({"target": target, "text": text});
            if let Some(from) = from {
                body["from"] = json!(from);
            }
            body.to_string().into_bytes()
        }),
        2 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => vec(any::<u8>(), 0..64),
    ]
}

#[test]
fn post_api_messages_answers_as_documented() {
    fuzz(120, (authorization(), message_body()), |probe, (auth, body)| {
        // Someone online, for private messages (and a nick no bot may take).
        probe.watcher_in_room(false);
        let answer = probe.post("/api/messages", &auth, &body)?;
        if answer.status == 200 {
            let sent: Value = serde_json::from_slice(&body).unwrap();
            if sent["from"] == "watcher" {
                return Err(format!("a bot took the nick of someone online: {answer:?}"));
            }
        }
        Ok(())
    });
}

#[test]
fn the_directory_answers_as_documented() {
    let name = prop_oneof![
        3 => "#?[a-z]{1,8}".prop_map(|s| s.replace('#', "%23")),
        1 => Just("%23room".to_owned()),
        1 => Just("watcher".to_owned()),
        1 => raw_segment(".{1,20}").prop_map(|(raw, _)| raw),
    ];
    let query = prop_oneof![
        2 => Just(String::new()),
        2 => (0u64..u64::MAX, 0u32..200).prop_map(|(b, l)| format!("?before={b}&limit={l}")),
        1 => "[a-z=&0-9%-]{0,20}".prop_map(|q| format!("?{q}")),
    ];
    fuzz(120, (authorization(), name, query), |probe, (auth, name, query)| {
        probe.watcher_in_room(false);
        probe.get_as("/api/channels", "/api/channels", &auth)?;
        probe.get_as("/api/users", "/api/users", &auth)?;
        probe.get_as("/api/users/{nick}", &format!("/api/users/{name}"), &auth)?;
        probe.get_as("/api/channels/{channel}/members", &format!("/api/channels/{name}/members"), &auth)?;
        let history = format!("/api/channels/{name}/history{query}");
        probe.get_as("/api/channels/{channel}/history", &history, &auth).map(drop)
    });
}

/// A body for the app's moderation and notices: the fields they take, with names of people
/// online and not, masks good and bad, and anything at all.
fn moderation_body() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just("nick"),
        Just("mask"),
        Just("reason"),
        Just("topic"),
        Just("by"),
        Just("target"),
        Just("text"),
        Just("from"),
    ];
    let value = prop_oneof![
        3 => Just(json!("watcher")),
        2 => Just(json!("#room")),
        2 => user().prop_map(Value::from),
        2 => ".{0,30}".prop_map(Value::from),
        1 => Just(json!("*!*@*")),
        1 => json_value(),
    ];
    prop_oneof![
        6 => btree_map(field, value, 0..4).prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()).to_string().into_bytes()),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => vec(any::<u8>(), 0..64),
    ]
}

#[test]
fn the_apps_moderation_answers_as_documented() {
    let operation = prop_oneof![
        Just("/api/channels/{channel}/kick"),
        Just("/api/channels/{channel}/bans"),
        Just("/api/channels/{channel}/unban"),
        Just("/api/channels/{channel}/topic"),
        Just("/api/notices"),
    ];
    let channel =
        prop_oneof![3 => Just("room".to_owned()), 1 => Just("%23room".to_owned()), 1 => "[a-z]{1,6}"];
    fuzz(
        150,
        (authorization(), operation, channel, moderation_body()),
        |probe, (auth, template, channel, body)| {
            // Someone in the channel to act on, back in after a kick (a refused rejoin, after a
            // ban, is fine: the case is about the answers).
            probe.watcher_in_room(true);
            let path = template.replace("{channel}", &channel);
            probe.post_to(template, &path, &auth, &body).map(drop)
        },
    );
}

/// A body for `POST /api/channels`: settings mostly well-formed (for new channels, the live
/// `#room`, and ones set up already), with values out of range and fields of the wrong type;
/// plus anything at all.
fn channel_body() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just("topic"),
        Just("moderated"),
        Just("invite_only"),
        Just("topic_ops_only"),
        Just("secret"),
        Just("private"),
        Just("key"),
        Just("limit"),
        Just("ops"),
        Just("founder"),
        Just("by"),
    ];
    let value = prop_oneof![
        3 => any::<bool>().prop_map(Value::from),
        2 => user().prop_map(Value::from),
        2 => ".{0,40}".prop_map(Value::from),
        2 => (-2i64..5_000_000_000).prop_map(Value::from),
        2 => vec(prop_oneof![user(), Just("potato:nobody".to_owned()), ".{0,12}"], 0..3).prop_map(Value::from),
        1 => json_value(),
    ];
    let channel = prop_oneof![4 => "#[a-z]{1,8}", 1 => Just("#room".to_owned()), 1 => ".{0,12}"];
    prop_oneof![
        6 => (channel, btree_map(field, value, 0..5)).prop_map(|(channel, m)| {
            let mut body: serde_json::Map<String, Value> = m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            body.insert("channel".into(), Value::from(channel));
            Value::Object(body).to_string().into_bytes()
        }),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => vec(any::<u8>(), 0..64),
    ]
}

#[test]
fn post_api_channels_answers_as_documented() {
    fuzz(150, (authorization(), channel_body()), |probe, (auth, body)| {
        probe.watcher_in_room(true);
        let answer = probe.post("/api/channels", &auth, &body)?;
        if answer.status == 201 {
            // Set up once: the same channel again is refused.
            let again = probe.post("/api/channels", &auth, &body)?;
            if again.status != 409 {
                return Err(format!("a channel was set up twice: {again:?}"));
            }
        }
        Ok(())
    });
}

#[test]
fn get_api_openapi_json_serves_this_document() {
    fuzz(1, Just(()), |probe, ()| {
        let answer = probe.get("/api/openapi.json", "/api/openapi.json")?;
        let served: Value = serde_json::from_str(&answer.body).map_err(|e| e.to_string())?;
        if served != serde_json::from_str::<Value>(SPEC).unwrap() {
            return Err("the served document is not docs/openapi.json".into());
        }
        Ok(())
    });
}

#[test]
fn the_legacy_routes_answer_as_documented() {
    let token = prop_oneof![
        2 => Just("nil".to_owned()),
        2 => "[A-Za-z0-9._~-]{16,40}",
        1 => ".{0,20}",
        1 => "ct1\\.[A-Za-z0-9_-]{0,20}\\.[A-Za-z0-9_-]{0,20}",
    ];
    let secret = prop_oneof![3 => Just(SECRET.to_owned()), 1 => ".{0,20}"];
    let case = (raw_segment(user()), raw_segment(token), raw_segment(secret));
    fuzz(200, case, |probe, ((raw_user, user), (raw_token, token), (raw_secret, _))| {
        let template = "/gettoken/{user}/{token}/{secret}";
        let answer = probe.get(template, &format!("/gettoken/{raw_user}/{raw_token}/{raw_secret}"))?;
        match (answer.status, &user) {
            (200, Some(user)) => probe.resolves_to(&answer.body, user)?,
            (200, None) => return Err(format!("an undecodable user got a token: {answer:?}")),
            _ => probe.still_free(user.as_deref())?,
        }
        let answer = probe.get("/getuser/{token}", &format!("/getuser/{raw_token}"))?;
        if answer.status == 200 && token.as_deref() == Some("nil") {
            return Err(format!("/getuser/nil answered {answer:?}"));
        }
        Ok(())
    });
}

#[test]
fn healthz_answers_as_documented() {
    fuzz(1, Just(()), |probe, ()| probe.get("/healthz", "/healthz").map(drop));
}
