//! WeChat Official Account message signatures and "safe mode" encryption (消息加解密).
//!
//! - URL verification and plaintext mode: `signature = hex(sha1(sort(token, timestamp,
//!   nonce).concat()))`.
//! - Safe mode: `msg_signature = hex(sha1(sort(token, timestamp, nonce, Encrypt).concat()))`;
//!   `Encrypt = base64(AES-256-CBC(key, iv = key[..16], pad32(random16 ‖ len_be32 ‖ msg ‖
//!   AppID)))`, key = base64(EncodingAESKey + "="). WeChat pads PKCS#7 to **32-byte**
//!   blocks (not the cipher's 16), so we pad and unpad by hand and run the cipher without
//!   padding.
//!
//! Pure functions: no clock, no I/O; randomness is injected.

use aes::Aes256;
use base64::Engine as _;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hotline_core::Rng;
use sha1::{Digest, Sha1};

use super::WechatError;

/// WeChat's padding block size (WXBizMsgCrypt's PKCS7Encoder uses 32).
const PAD_BLOCK: usize = 32;
const AES_BLOCK: usize = 16;

/// EncodingAESKey is 43 base64 characters without the final `=`; its last character carries
/// bits beyond the 32 key bytes, which the standard engine would refuse.
const KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// `hex(sha1(sorted parts concatenated))`, the signature of every WeChat callback.
pub fn signature(parts: &[&str]) -> String {
    let mut sorted: Vec<&str> = parts.to_vec();
    sorted.sort_unstable();
    let mut h = Sha1::new();
    for p in sorted {
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Compares in constant time (the length is not secret).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y.to_ascii_lowercase()))
            == 0
}

/// Decodes an EncodingAESKey (43 characters) into the 32-byte AES key.
pub fn decode_aes_key(encoding_aes_key: &str) -> Result<[u8; 32], WechatError> {
    if encoding_aes_key.len() != 43 {
        return Err(WechatError::InvalidKey(format!(
            "EncodingAESKey must be 43 characters, got {}",
            encoding_aes_key.chars().count()
        )));
    }
    let raw = KEY_ENGINE
        .decode(format!("{encoding_aes_key}="))
        .map_err(|e| WechatError::InvalidKey(format!("EncodingAESKey is not base64: {e}")))?;
    raw.try_into()
        .map_err(|_| WechatError::InvalidKey("EncodingAESKey must decode to 32 bytes".into()))
}

/// The message cipher of one Official Account.
#[derive(Clone)]
pub struct MsgCrypto {
    token: String,
    app_id: String,
    key: [u8; 32],
}

impl std::fmt::Debug for MsgCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token and the key are secrets: never in logs.
        f.debug_struct("MsgCrypto")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl MsgCrypto {
    pub fn new(token: &str, encoding_aes_key: &str, app_id: &str) -> Result<Self, WechatError> {
        Ok(Self {
            token: token.to_string(),
            app_id: app_id.to_string(),
            key: decode_aes_key(encoding_aes_key)?,
        })
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Checks `signature` of a URL verification or a plaintext-mode message.
    pub fn verify_signature(
        &self,
        timestamp: &str,
        nonce: &str,
        signature_hex: &str,
    ) -> Result<(), WechatError> {
        if same(
            &signature(&[&self.token, timestamp, nonce]),
            signature_hex.trim(),
        ) {
            Ok(())
        } else {
            Err(WechatError::BadSignature)
        }
    }

    /// The `msg_signature` of an encrypted message.
    pub fn msg_signature(&self, timestamp: &str, nonce: &str, encrypt: &str) -> String {
        signature(&[&self.token, timestamp, nonce, encrypt])
    }

    pub fn verify_msg_signature(
        &self,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
        msg_signature: &str,
    ) -> Result<(), WechatError> {
        if same(
            &self.msg_signature(timestamp, nonce, encrypt),
            msg_signature.trim(),
        ) {
            Ok(())
        } else {
            Err(WechatError::BadSignature)
        }
    }

    fn iv(&self) -> &[u8] {
        &self.key[..AES_BLOCK]
    }

    /// Decrypts an `Encrypt` value and checks that it was meant for our AppID.
    pub fn decrypt(&self, encrypt_b64: &str) -> Result<String, WechatError> {
        let mut buf = base64::engine::general_purpose::STANDARD
            .decode(encrypt_b64.trim())
            .map_err(|_| WechatError::BadCiphertext("Encrypt is not base64".into()))?;
        if buf.is_empty() || buf.len() % AES_BLOCK != 0 {
            return Err(WechatError::BadCiphertext(
                "ciphertext is not a whole number of AES blocks".into(),
            ));
        }
        let mut dec = cbc::Decryptor::<Aes256>::new_from_slices(&self.key, self.iv())
            .map_err(|_| WechatError::InvalidKey("key or IV length".into()))?;
        for chunk in buf.chunks_exact_mut(AES_BLOCK) {
            let block: &mut aes::Block = chunk
                .try_into()
                .map_err(|_| WechatError::BadCiphertext("block length".into()))?;
            dec.decrypt_block(block);
        }
        let plain = unpad(&buf)?;
        if plain.len() < 20 {
            return Err(WechatError::BadCiphertext("plaintext too short".into()));
        }
        let len = u32::from_be_bytes([plain[16], plain[17], plain[18], plain[19]]) as usize;
        let rest = &plain[20..];
        if len > rest.len() {
            return Err(WechatError::BadCiphertext(
                "message length exceeds the plaintext".into(),
            ));
        }
        let (msg, app_id) = rest.split_at(len);
        if app_id != self.app_id.as_bytes() {
            return Err(WechatError::WrongAppId);
        }
        String::from_utf8(msg.to_vec())
            .map_err(|_| WechatError::BadCiphertext("message is not UTF-8".into()))
    }

    /// Encrypts a reply: `base64(AES-256-CBC(pad32(random16 ‖ len ‖ msg ‖ AppID)))`.
    pub fn encrypt(&self, rng: &dyn Rng, msg: &str) -> String {
        let mut random = [0u8; 16];
        rng.fill(&mut random);
        self.encrypt_with(&random, msg)
    }

    /// [`Self::encrypt`] with given random bytes (known-answer tests).
    pub fn encrypt_with(&self, random: &[u8; 16], msg: &str) -> String {
        let mut buf = Vec::with_capacity(20 + msg.len() + self.app_id.len() + PAD_BLOCK);
        buf.extend_from_slice(random);
        // Messages are bounded far below 4 GiB by the HTTP body limit.
        buf.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        buf.extend_from_slice(msg.as_bytes());
        buf.extend_from_slice(self.app_id.as_bytes());
        let pad = PAD_BLOCK - buf.len() % PAD_BLOCK;
        buf.extend(std::iter::repeat_n(pad as u8, pad));
        let mut enc = cbc::Encryptor::<Aes256>::new_from_slices(&self.key, self.iv())
            .expect("a 32-byte key and a 16-byte IV");
        for chunk in buf.chunks_exact_mut(AES_BLOCK) {
            let block: &mut aes::Block = chunk.try_into().expect("exact chunks");
            enc.encrypt_block(block);
        }
        base64::engine::general_purpose::STANDARD.encode(buf)
    }
}

/// Removes WeChat's PKCS#7 padding (1..=32 bytes, every pad byte equal to its count).
fn unpad(buf: &[u8]) -> Result<&[u8], WechatError> {
    let n = *buf.last().ok_or(WechatError::BadPadding)? as usize;
    if n == 0 || n > PAD_BLOCK || n > buf.len() {
        return Err(WechatError::BadPadding);
    }
    let (body, pad) = buf.split_at(buf.len() - n);
    if pad.iter().any(|&b| b as usize != n) {
        return Err(WechatError::BadPadding);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known-answer vector A: Tencent's own WXBizMsgCrypt sample (token "QDG6eK", AppID/CorpID
    // "wx5823bf96d3bd56c7"), published in the WeChat/WeCom callback documentation
    // (developer.work.weixin.qq.com/document/path/90968, "加解密方案说明") and shipped in the
    // official Sample.cs / Sample.py; the same values are used by the test suites of
    // wechatpy, EasyWeChat and others.
    const A_TOKEN: &str = "QDG6eK";
    const A_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    const A_APPID: &str = "wx5823bf96d3bd56c7";
    const A_TIMESTAMP: &str = "1409659813";
    const A_NONCE: &str = "1372623149";
    const A_MSG_SIGNATURE: &str = "477715d11cdb4164915debcba66cb864d751f3e6";
    pub(crate) const A_ENCRYPT: &str = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==";
    const A_PLAIN: &str = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n<FromUserName><![CDATA[mycreate]]></FromUserName>\n<CreateTime>1409659813</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>";

    // Known-answer vector B: the Official Account sample of the same SDK (token "spamtest",
    // AppID "wx2c2769f8efd9abc2", Sample.py of WXBizMsgCrypt for 公众平台), also in
    // wechatpy's tests.
    const B_TOKEN: &str = "spamtest";
    const B_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const B_APPID: &str = "wx2c2769f8efd9abc2";
    const B_TIMESTAMP: &str = "1409735669";
    const B_NONCE: &str = "1320562132";
    const B_MSG_SIGNATURE: &str = "5d197aaffba7e9b25a30732f161a50dee96bd5fa";
    const B_ENCRYPT: &str = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";

    fn a() -> MsgCrypto {
        MsgCrypto::new(A_TOKEN, A_KEY, A_APPID).unwrap()
    }

    #[test]
    fn known_answer_tencent_sample_decrypts() {
        let c = a();
        c.verify_msg_signature(A_TIMESTAMP, A_NONCE, A_ENCRYPT, A_MSG_SIGNATURE)
            .unwrap();
        assert_eq!(c.decrypt(A_ENCRYPT).unwrap(), A_PLAIN);
    }

    #[test]
    fn known_answer_official_account_sample_decrypts() {
        let c = MsgCrypto::new(B_TOKEN, B_KEY, B_APPID).unwrap();
        c.verify_msg_signature(B_TIMESTAMP, B_NONCE, B_ENCRYPT, B_MSG_SIGNATURE)
            .unwrap();
        let plain = c.decrypt(B_ENCRYPT).unwrap();
        assert!(plain.starts_with("<xml>"), "{plain}");
        assert!(
            plain.contains("<MsgType><![CDATA[text]]></MsgType>"),
            "{plain}"
        );
    }

    #[test]
    fn encryption_round_trips_and_is_deterministic_for_given_random() {
        let c = a();
        let random = *b"0123456789abcdef";
        let msg = "<xml><Content><![CDATA[您好，这是回复]]></Content></xml>";
        let e1 = c.encrypt_with(&random, msg);
        assert_eq!(e1, c.encrypt_with(&random, msg));
        assert_eq!(c.decrypt(&e1).unwrap(), msg);
        // padded to 32-byte blocks
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&e1)
            .unwrap();
        assert_eq!(raw.len() % 32, 0);
        // a message exactly filling a block gets a whole block of padding
        for len in 0..70 {
            let m = "x".repeat(len);
            assert_eq!(c.decrypt(&c.encrypt_with(&random, &m)).unwrap(), m);
        }
    }

    #[test]
    fn refusals_are_errors_not_panics() {
        let c = a();
        assert!(matches!(
            c.verify_msg_signature(A_TIMESTAMP, A_NONCE, A_ENCRYPT, &"0".repeat(40)),
            Err(WechatError::BadSignature)
        ));
        assert!(matches!(
            c.verify_msg_signature("1409659814", A_NONCE, A_ENCRYPT, A_MSG_SIGNATURE),
            Err(WechatError::BadSignature)
        ));
        let other = MsgCrypto::new(A_TOKEN, A_KEY, "wx0000000000000000").unwrap();
        assert!(matches!(
            other.decrypt(A_ENCRYPT),
            Err(WechatError::WrongAppId)
        ));
        assert!(matches!(
            c.decrypt("not base64!!"),
            Err(WechatError::BadCiphertext(_))
        ));
        assert!(matches!(
            c.decrypt("AAAA"),
            Err(WechatError::BadCiphertext(_))
        ));
        // a valid ciphertext under another key decrypts to garbage: bad padding or length
        let wrong_key = MsgCrypto::new(A_TOKEN, B_KEY, A_APPID).unwrap();
        assert!(matches!(
            wrong_key.decrypt(A_ENCRYPT),
            Err(WechatError::BadPadding | WechatError::BadCiphertext(_) | WechatError::WrongAppId)
        ));
        assert!(matches!(unpad(&[1, 2, 3, 0]), Err(WechatError::BadPadding)));
        assert!(matches!(unpad(&[2, 2, 3, 3]), Err(WechatError::BadPadding)));
        assert!(matches!(unpad(&[33; 64]), Err(WechatError::BadPadding)));
        assert_eq!(unpad(&[9, 2, 2]).unwrap(), &[9]);
        assert!(matches!(
            MsgCrypto::new(A_TOKEN, "short", A_APPID),
            Err(WechatError::InvalidKey(_))
        ));
        assert!(matches!(
            MsgCrypto::new(A_TOKEN, &"!".repeat(43), A_APPID),
            Err(WechatError::InvalidKey(_))
        ));
    }

    #[test]
    fn url_signature_is_sha1_of_sorted_parts() {
        let c = a();
        let sig = signature(&[A_TOKEN, "1409659589", "263014780"]);
        assert_eq!(sig.len(), 40);
        c.verify_signature("1409659589", "263014780", &sig).unwrap();
        c.verify_signature("1409659589", "263014780", &sig.to_uppercase())
            .unwrap();
        assert!(c.verify_signature("1409659589", "1", &sig).is_err());
        // order of the inputs does not matter
        assert_eq!(sig, signature(&["263014780", A_TOKEN, "1409659589"]));
        // sha1("abc") — the FIPS 180 example — for a single part
        assert_eq!(
            signature(&["abc"]),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }
}
