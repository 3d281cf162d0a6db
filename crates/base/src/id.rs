//! Ids that cross crates: [`CameraId`], [`ChannelId`], [`ReservationId`] and [`SessionId`].
//!
//! Each is a cheap-to-clone `Arc<str>` newtype, so a function that takes a `&CameraId` cannot be
//! handed a reservation id by mistake. They borrow as `str` (a `HashMap<CameraId, _>` is looked up
//! with a `&str`; `&id` coerces to `&str` where a lookup takes one), display as the plain string, and convert from `&str`/`String`. Inside a crate,
//! and in SQLite rows and the API's JSON, plain strings stay.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.into())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s.into())
            }
        }

        impl From<&String> for $name {
            fn from(s: &String) -> Self {
                $name(s.as_str().into())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                *self.0 == **other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }
    };
}

string_id!(
    /// A camera's stable id (`cam-001-sheikh-zayed`), as the catalog names it.
    CameraId
);

/// The empty id, for structs that derive `Default` and fill it in.
impl Default for CameraId {
    fn default() -> Self {
        CameraId("".into())
    }
}

string_id!(
    /// A live channel's id (`hub::Channel`, and the ingest source feeding it): the camera id for
    /// a camera's main stream, `camera@quality` for a sub-stream. Its own type rather than a
    /// [`CameraId`], because a sub-stream's channel id is not a camera id.
    ChannelId
);

impl ChannelId {
    /// The channel of a camera's main stream.
    pub fn main(camera: &CameraId) -> Self {
        ChannelId(camera.0.clone())
    }

    /// The channel of a camera's sub-stream of `quality`.
    pub fn substream(camera: &CameraId, quality: &str) -> Self {
        ChannelId(format!("{camera}@{quality}").into())
    }
}

string_id!(
    /// A stream reservation's id, as admission issues it.
    ReservationId
);

string_id!(
    /// A WHEP session's id: random and unguessable (128 bits as 32 lower-case hex digits), usable
    /// in URLs. [`SessionId::parse`] accepts only that form.
    SessionId
);

impl SessionId {
    /// A fresh id from 128 random bits.
    pub fn from_random(bits: u128) -> Self {
        SessionId(format!("{bits:032x}").into())
    }

    /// Accepts only the form sessions are given (32 hex digits), lower-cased.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| SessionId(s.to_ascii_lowercase().into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn looked_up_by_str_and_displayed_plain() {
        let mut m = HashMap::new();
        m.insert(CameraId::from("cam-1"), 1);
        assert_eq!(m.get("cam-1"), Some(&1));
        assert_eq!(CameraId::from("cam-1").to_string(), "cam-1");
        assert_eq!(ReservationId::from(String::from("r-1")).as_str(), "r-1");
        assert_eq!(CameraId::from("cam-1"), "cam-1");
    }

    #[test]
    fn session_id_parse_accepts_only_32_hex() {
        let id = SessionId::from_random(0xABCD);
        assert_eq!(id.as_str().len(), 32);
        assert_eq!(SessionId::parse(id.as_str()), Some(id));
        assert_eq!(
            SessionId::parse("0123456789ABCDEF0123456789abcdef").map(|s| s.to_string()),
            Some("0123456789abcdef0123456789abcdef".to_string())
        );
        assert_eq!(SessionId::parse("xyz"), None);
        assert_eq!(SessionId::parse("g123456789abcdef0123456789abcdef"), None);
    }
}
