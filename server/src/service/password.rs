//! Passwords and emails for Potato. Hashes are argon2id with OWASP's recommended parameters
//! (19 MiB, 2 passes, 1 lane), computed on the blocking pool so they never stall the runtime.
//!
//! Each hash needs 19 MiB of working memory, which makes unbounded hashing a memory bomb. The
//! [`Hasher`] runs at most a few at once, each in a buffer it allocated once and reuses, so
//! password work never holds more than `permits × 19 MiB`, and that memory is the same before,
//! during and after a burst; callers past a short queue are told the server is busy.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use app::protocol::{ErrorCode, ProtocolError};

pub(super) const MIN_PASSWORD_CHARS: usize = 8;
pub(super) const MAX_PASSWORD_CHARS: usize = 128;
const MAX_EMAIL_BYTES: usize = 254;

/// Working memory of one hash, in 1 KiB blocks.
const M_COST: u32 = 19 * 1024;
/// Callers that may wait for a turn at once; past that, `busy`.
const MAX_WAITING: usize = 64;

fn params() -> Params {
    Params::new(M_COST, 2, 1, None).unwrap_or_default()
}

fn argon2(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Passwords are 8 to 128 characters.
pub(super) fn check_password(password: &str) -> Result<(), ProtocolError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(ProtocolError::new(
            ErrorCode::WeakPassword,
            format!("a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// An email must look like `name@domain.tld`: one `@`, no spaces or control characters, a dot
/// in the domain. Whether it exists is not checked.
pub(super) fn check_email(email: &str) -> Result<(), ProtocolError> {
    let bad = || ProtocolError::new(ErrorCode::InvalidEmail, "an email address looks like name@example.com");
    if email.len() > MAX_EMAIL_BYTES || email.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let labels_ok = domain.split('.').all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
    if local.is_empty() || domain.contains('@') || !domain.contains('.') || !labels_ok {
        return Err(bad());
    }
    Ok(())
}

fn internal(what: &str) -> ProtocolError {
    tracing::error!("password hashing failed: {what}");
    ProtocolError::new(ErrorCode::Internal, "the password could not be processed")
}

/// Runs argon2 with bounded concurrency and reused working memory.
pub(super) struct Hasher {
    permits: Semaphore,
    waiting: AtomicUsize,
    /// Working memory of finished hashes, handed to the next one.
    buffers: Mutex<Vec<Vec<Block>>>,
    #[cfg(test)]
    concurrency: usize,
    /// Hashes computed so far (for tests and metrics).
    runs: AtomicU64,
}

/// Gives the waiting slot back however the wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Hasher {
    /// A hasher running at most `concurrency` hashes at once.
    pub(super) fn new(concurrency: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            permits: Semaphore::new(concurrency),
            waiting: AtomicUsize::new(0),
            buffers: Mutex::new(Vec::new()),
            #[cfg(test)]
            concurrency,
            runs: AtomicU64::new(0),
        }
    }

    /// As many hashes at once as the machine has cores, at most four.
    pub(super) fn for_this_machine() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()).min(4))
    }

    /// How many hashes were computed (registrations, password checks, decoys).
    pub(super) fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// The most memory the hashes can hold, in bytes.
    #[cfg(test)]
    pub(super) fn memory_bound(&self) -> usize {
        self.concurrency * M_COST as usize * Block::SIZE
    }

    /// Runs `work` on the blocking pool with a working buffer, once a permit is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, ProtocolError> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ProtocolError::new(
                ErrorCode::Busy,
                "the server is busy checking passwords; try again in a moment",
            ));
        }
        let waiting = Waiting(&self.waiting);
        let _permit = self.permits.acquire().await.map_err(|e| internal(&e.to_string()))?;
        drop(waiting);
        let buffer = self.buffers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        self.runs.fetch_add(1, Ordering::Relaxed);
        let (result, buffer) = tokio::task::spawn_blocking(move || {
            let mut buffer = buffer.unwrap_or_default();
            let result = work(&mut buffer);
            (result, buffer)
        })
        .await
        .map_err(|e| internal(&e.to_string()))?;
        self.buffers.lock().unwrap_or_else(|e| e.into_inner()).push(buffer);
        Ok(result)
    }

    /// The argon2id PHC string of `password`, with a fresh random salt.
    pub(super) async fn hash(&self, password: String) -> Result<String, ProtocolError> {
        self.run(move |buffer| hash_with(password.as_bytes(), buffer)).await?
    }

    /// Whether `password` matches `hash`; with no hash, it checks against a decoy (as long as a
    /// real check) and says no, so unknown accounts and wrong passwords take the same time.
    pub(super) async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ProtocolError> {
        self.run(move |buffer| {
            let real = hash.is_some();
            let hash = hash.unwrap_or_else(|| decoy().to_owned());
            let matches = verify_with(password.as_bytes(), &hash, buffer);
            real && matches
        })
        .await
    }
}

/// Hashes into `buffer`, resized to the working memory the parameters need.
fn hash_into(params: Params, password: &[u8], salt: &[u8], out: &mut [u8], buffer: &mut Vec<Block>) -> bool {
    buffer.resize(params.block_count(), Block::default());
    argon2(params).hash_password_into_with_memory(password, salt, out, &mut buffer[..]).is_ok()
}

fn hash_with(password: &[u8], buffer: &mut Vec<Block>) -> Result<String, ProtocolError> {
    let salt_bytes = rand::random::<[u8; 16]>();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| internal(&e.to_string()))?;
    let params = params();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    if !hash_into(params.clone(), password, &salt_bytes, &mut out, buffer) {
        return Err(internal("argon2 refused its inputs"));
    }
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| internal(&e.to_string()))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| internal(&e.to_string()))?),
    };
    Ok(phc.to_string())
}

/// Checks a password against a PHC string in constant time. Stored hashes are always ours
/// (argon2id); anything else does not match.
fn verify_with(password: &[u8], phc: &str, buffer: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else { return false };
    if hash.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    let Ok(params) = Params::try_from(&hash) else { return false };
    // Never let a stored hash ask for more memory than our own parameters use.
    if params.m_cost() > M_COST || params.p_cost() != 1 {
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
    let mut out = vec![0u8; expected.len()];
    if !hash_into(params, password, salt, &mut out, buffer) {
        return false;
    }
    Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// A hash of a random password, verified against when an account does not exist.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let password = rand::random::<[u8; 16]>();
        hash_with(&password, &mut Vec::new()).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hasher = Hasher::new(2);
        let h = hasher.hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(hasher.verify("correct horse".into(), Some(h.clone())).await.unwrap());
        assert!(!hasher.verify("wrong horse".into(), Some(h.clone())).await.unwrap());
        assert!(!hasher.verify("correct horse".into(), None).await.unwrap());
        assert_ne!(hasher.hash("correct horse".into()).await.unwrap(), h, "salts differ");
        // The argon2 crate's own verifier agrees with ours.
        use argon2::password_hash::PasswordVerifier;
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(argon2(params()).verify_password(b"correct horse", &parsed).is_ok());
        // Hashes asking for more memory than ours, or of another algorithm, never match.
        let greedy = h.replace("m=19456", "m=1048576");
        assert!(!hasher.verify("correct horse".into(), Some(greedy)).await.unwrap());
        assert!(!hasher
            .verify("correct horse".into(), Some("$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()))
            .await
            .unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_runs_a_few_at_a_time_in_reused_buffers_and_the_rest_are_told_busy() {
        let hasher = std::sync::Arc::new(Hasher::new(2));
        let tasks: Vec<_> = (0..MAX_WAITING + 40)
            .map(|i| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.verify(format!("password {i}"), None).await })
            })
            .collect();
        let mut busy = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(matched) => assert!(!matched),
                Err(e) => {
                    assert_eq!(e.code, ErrorCode::Busy);
                    busy += 1;
                }
            }
        }
        assert!(busy > 0, "past the queue, callers are refused");
        // Never more working buffers than permits, whatever the burst.
        assert!(hasher.buffers.lock().unwrap().len() <= 2);
        assert_eq!(hasher.memory_bound(), 2 * 19 * 1024 * 1024);
    }

    #[test]
    fn emails_and_passwords_are_checked_for_form() {
        for ok in ["a@b.example", "first.last+tag@mail.example.org"] {
            assert!(check_email(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@b.example",
            "a@@b.example",
            "a b@c.example",
            "a@.example",
            "a@b..c",
            "a@-b.example",
        ] {
            assert_eq!(check_email(bad).unwrap_err().code, ErrorCode::InvalidEmail, "{bad}");
        }
        assert!(check_password("12345678").is_ok());
        assert_eq!(check_password("1234567").unwrap_err().code, ErrorCode::WeakPassword);
        assert_eq!(check_password(&"x".repeat(129)).unwrap_err().code, ErrorCode::WeakPassword);
    }
}
