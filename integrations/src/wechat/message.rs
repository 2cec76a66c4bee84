//! The XML of WeChat callbacks and passive replies (被动回复).
//!
//! Callbacks are flat: `<xml><ToUserName>…</ToUserName>…</xml>`, text usually in CDATA. We
//! read the first-level children of `<xml>` into a map with quick-xml's pull reader and
//! refuse anything else: a DOCTYPE (no entity tricks), a second root, nesting we do not
//! expect, more than [`MAX_FIELDS`] fields, or text that is not well formed.

use std::collections::HashMap;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::WechatError;

/// More fields than any WeChat message has; a bound against hostile input.
pub const MAX_FIELDS: usize = 64;

/// Reads `<xml>`'s first-level children (name → text). Nested elements (e.g. the
/// `ScanCodeInfo` of some events) are skipped.
pub fn parse_fields(xml: &str) -> Result<HashMap<String, String>, WechatError> {
    let bad = |m: &str| WechatError::MalformedXml(m.to_string());
    let mut reader = Reader::from_str(xml);
    let mut fields = HashMap::new();
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut current: Option<(String, String)> = None;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| WechatError::MalformedXml(e.to_string()))?;
        match ev {
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::DocType(_) => return Err(bad("DOCTYPE is not allowed")),
            Event::Start(e) => {
                depth += 1;
                match depth {
                    1 => {
                        if seen_root || e.name().as_ref() != "xml" {
                            return Err(bad("the root element must be one <xml>"));
                        }
                        seen_root = true;
                    }
                    2 => {
                        let name = e.name().as_ref().to_string();
                        current = Some((name, String::new()));
                    }
                    // Nested structures (ScanCodeInfo, SendLocationInfo …) are not used.
                    _ => {}
                }
            }
            Event::Empty(e) => {
                if depth == 1 {
                    let name = e.name().as_ref().to_string();
                    insert(&mut fields, name, String::new())?;
                } else if depth == 0 {
                    return Err(bad("the root element must be one <xml>"));
                }
            }
            Event::End(_) => {
                if depth == 2
                    && let Some((name, text)) = current.take()
                {
                    insert(&mut fields, name, text)?;
                }
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| bad("unbalanced end tag"))?;
            }
            Event::Text(t) => {
                if depth == 2
                    && let Some((_, text)) = current.as_mut()
                {
                    text.push_str(&t.xml10_content());
                } else if depth == 0 && !t.trim().is_empty() {
                    return Err(bad("text outside <xml>"));
                }
            }
            Event::CData(t) => {
                if depth == 2
                    && let Some((_, text)) = current.as_mut()
                {
                    text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if depth == 2
                    && let Some((_, text)) = current.as_mut()
                {
                    if let Some(c) = r
                        .resolve_char_ref()
                        .map_err(|_| bad("invalid character reference"))?
                    {
                        text.push(c);
                    } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(&r) {
                        text.push_str(s);
                    } else {
                        return Err(bad("unknown entity"));
                    }
                }
            }
            Event::Eof => break,
        }
    }
    if !seen_root || depth != 0 {
        return Err(bad("document is incomplete"));
    }
    Ok(fields)
}

fn insert(
    fields: &mut HashMap<String, String>,
    name: String,
    text: String,
) -> Result<(), WechatError> {
    if fields.len() >= MAX_FIELDS {
        return Err(WechatError::MalformedXml("too many fields".into()));
    }
    if fields.insert(name, text).is_some() {
        // Two `Encrypt` (or `FromUserName`) fields would make the signed value ambiguous.
        return Err(WechatError::MalformedXml("a field appears twice".into()));
    }
    Ok(())
}

/// What a user did, by `MsgType` (and `Event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Text {
        content: String,
    },
    /// A voice message; `recognition` is WeChat's speech-to-text when the account has it on.
    Voice {
        recognition: Option<String>,
    },
    /// Followed the account.
    Subscribe,
    Unsubscribe,
    /// A custom menu button (`Event` CLICK) with its key.
    MenuClick {
        key: String,
    },
    /// Anything else (images, locations, other events): acknowledged, not answered.
    Other {
        msg_type: String,
    },
}

/// A decoded callback message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// Our account's original id (`gh_…`).
    pub to_user: String,
    /// The user's openid.
    pub from_user: String,
    pub create_time: i64,
    /// WeChat's MsgId (events have none: then `FromUserName + CreateTime` is the key).
    pub msg_id: Option<String>,
    pub kind: Inbound,
}

impl InboundMessage {
    /// A key that is the same for WeChat's retries of one message (it retries three times
    /// when we do not answer within 5 s), for de-duplication.
    pub fn dedup_key(&self) -> String {
        match &self.msg_id {
            Some(id) => format!("wx:{id}"),
            None => format!("wx:{}:{}", self.from_user, self.create_time),
        }
    }

    /// The text a user wrote or said, when there is one.
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            Inbound::Text { content } => Some(content),
            Inbound::Voice {
                recognition: Some(r),
            } if !r.trim().is_empty() => Some(r),
            _ => None,
        }
    }
}

/// Decodes a (plaintext or decrypted) callback.
pub fn parse_message(xml: &str) -> Result<InboundMessage, WechatError> {
    let mut f = parse_fields(xml)?;
    let mut take = |k: &str| f.remove(k).map(|v| v.trim().to_string());
    let from_user = take("FromUserName")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| WechatError::MalformedXml("FromUserName is missing".into()))?;
    // Our account: the reply's FromUserName. WeChat always sends it; without it a reply
    // would carry an empty sender (found by the `wechat` fuzz target).
    let to_user = take("ToUserName")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| WechatError::MalformedXml("ToUserName is missing".into()))?;
    let create_time = take("CreateTime")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| WechatError::MalformedXml("CreateTime is missing or not a number".into()))?;
    let msg_type =
        take("MsgType").ok_or_else(|| WechatError::MalformedXml("MsgType is missing".into()))?;
    let msg_id = take("MsgId").filter(|s| !s.is_empty());
    let kind = match msg_type.as_str() {
        "text" => Inbound::Text {
            content: f.remove("Content").unwrap_or_default(),
        },
        "voice" => Inbound::Voice {
            recognition: take("Recognition").filter(|s| !s.is_empty()),
        },
        "event" => {
            let event = take("Event").unwrap_or_default();
            match event.to_ascii_lowercase().as_str() {
                "subscribe" => Inbound::Subscribe,
                "unsubscribe" => Inbound::Unsubscribe,
                "click" => Inbound::MenuClick {
                    key: take("EventKey").unwrap_or_default(),
                },
                _ => Inbound::Other {
                    msg_type: format!("event:{event}"),
                },
            }
        }
        other => Inbound::Other {
            msg_type: other.to_string(),
        },
    };
    Ok(InboundMessage {
        to_user,
        from_user,
        create_time,
        msg_id,
        kind,
    })
}

/// The outer `<xml>` of a safe-mode callback: the `Encrypt` field.
pub fn encrypted_field(xml: &str) -> Result<String, WechatError> {
    parse_fields(xml)?
        .remove("Encrypt")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| WechatError::MalformedXml("Encrypt is missing".into()))
}

/// Text inside CDATA; a `]]>` in the text is split across two sections.
fn cdata(s: &str) -> String {
    format!("<![CDATA[{}]]>", s.replace("]]>", "]]]]><![CDATA[>"))
}

/// A passive text reply (to = the user's openid, from = our account).
pub fn text_reply(to_user: &str, from_user: &str, create_time: i64, content: &str) -> String {
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName>\
         <CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
         <Content>{}</Content></xml>",
        cdata(to_user),
        cdata(from_user),
        cdata(content)
    )
}

/// The envelope of an encrypted passive reply.
pub fn encrypted_reply(encrypt: &str, msg_signature: &str, timestamp: &str, nonce: &str) -> String {
    format!(
        "<xml><Encrypt>{}</Encrypt><MsgSignature>{}</MsgSignature>\
         <TimeStamp>{}</TimeStamp><Nonce>{}</Nonce></xml>",
        cdata(encrypt),
        cdata(msg_signature),
        timestamp,
        cdata(nonce)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_voice_and_events() {
        let m = parse_message(
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oU1]]></FromUserName>\
             <CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>\
             <Content><![CDATA[保证金 &lt;何时&gt; 退？]]></Content><MsgId>42</MsgId></xml>",
        )
        .unwrap();
        assert_eq!(m.from_user, "oU1");
        assert_eq!(m.to_user, "gh_1");
        assert_eq!(m.create_time, 1_700_000_000);
        assert_eq!(
            m.text(),
            Some("保证金 &lt;何时&gt; 退？"),
            "CDATA is literal"
        );
        assert_eq!(m.dedup_key(), "wx:42");

        let m = parse_message(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>oU1</FromUserName><CreateTime>1</CreateTime>\
             <MsgType>text</MsgType><Content>a &amp; b &#x4F60;</Content></xml>",
        )
        .unwrap();
        assert_eq!(m.text(), Some("a & b 你"));

        let m = parse_message(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>oU1</FromUserName><CreateTime>1</CreateTime>\
             <MsgType>voice</MsgType><MediaId>m</MediaId><Format>amr</Format>\
             <Recognition><![CDATA[转人工]]></Recognition><MsgId>7</MsgId></xml>",
        )
        .unwrap();
        assert_eq!(m.text(), Some("转人工"));
        let m = parse_message(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>oU1</FromUserName><CreateTime>1</CreateTime>\
             <MsgType>voice</MsgType><Recognition></Recognition></xml>",
        )
        .unwrap();
        assert_eq!(m.kind, Inbound::Voice { recognition: None });
        assert_eq!(m.text(), None);

        let m = parse_message(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>oU1</FromUserName><CreateTime>5</CreateTime>\
             <MsgType>event</MsgType><Event>subscribe</Event></xml>",
        )
        .unwrap();
        assert_eq!(m.kind, Inbound::Subscribe);
        assert_eq!(m.dedup_key(), "wx:oU1:5");
        let m = parse_message(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>oU1</FromUserName><CreateTime>5</CreateTime>\
             <MsgType>event</MsgType><Event>CLICK</Event><EventKey>HUMAN</EventKey>\
             <ScanCodeInfo><ScanType>x</ScanType></ScanCodeInfo></xml>",
        )
        .unwrap();
        assert_eq!(
            m.kind,
            Inbound::MenuClick {
                key: "HUMAN".into()
            }
        );
        let m = parse_message(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>oU1</FromUserName><CreateTime>5</CreateTime>\
             <MsgType>image</MsgType><PicUrl>u</PicUrl></xml>",
        )
        .unwrap();
        assert_eq!(
            m.kind,
            Inbound::Other {
                msg_type: "image".into()
            }
        );
    }

    #[test]
    fn malformed_xml_is_refused() {
        for bad in [
            "",
            "not xml",
            "<xml><FromUserName>a</FromUserName>",
            "<xml><FromUserName>a</ToUserName></xml>",
            "<root><FromUserName>a</FromUserName></root>",
            "<xml></xml><xml></xml>",
            "<!DOCTYPE xml [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml><Content>&e;</Content></xml>",
            "<xml><Content>&e;</Content></xml>",
            "<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>",
            // fields present but required ones missing
            "<xml><MsgType>text</MsgType></xml>",
            // No ToUserName: a reply would have no sender (fuzz/corpus/wechat/no_to_user_reply.txt).
            "<xml><FromUserName>oU1</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content></xml>",
            "<xml><FromUserName>a</FromUserName><CreateTime>x</CreateTime><MsgType>text</MsgType></xml>",
        ] {
            assert!(
                matches!(parse_message(bad), Err(WechatError::MalformedXml(_))),
                "{bad:?}"
            );
        }
        let many: String = (0..100).map(|i| format!("<F{i}>x</F{i}>")).collect();
        assert!(parse_fields(&format!("<xml>{many}</xml>")).is_err());
        assert!(encrypted_field("<xml><ToUserName>x</ToUserName></xml>").is_err());
    }

    #[test]
    fn replies_round_trip_through_the_parser() {
        let xml = text_reply("oU1", "gh_1", 9, "答复 ]]> 含 <特殊> & 字符");
        let f = parse_fields(&xml).unwrap();
        assert_eq!(f["Content"], "答复 ]]> 含 <特殊> & 字符");
        assert_eq!(f["ToUserName"], "oU1");
        assert_eq!(f["MsgType"], "text");
        let env = encrypted_reply("ENC", "SIG", "123", "n1");
        let f = parse_fields(&env).unwrap();
        assert_eq!(
            (
                f["Encrypt"].as_str(),
                f["MsgSignature"].as_str(),
                f["TimeStamp"].as_str()
            ),
            ("ENC", "SIG", "123")
        );
        assert_eq!(encrypted_field(&env).unwrap(), "ENC");
    }
}
