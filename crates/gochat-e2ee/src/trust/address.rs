//! User ids, device ids and device addresses: the names certificates and device lists
//! sign, in one canonical form so that a signature over a name can never be read as
//! being about another name.
//!
//! ```text
//! UserId        = local "@" domain                 (3..=254 bytes, lowercase ASCII)
//!   local       = 1..=64 of [a-z0-9._+-]
//!   domain      = labels joined by ".", at least two; each label 1..=63 of [a-z0-9-],
//!                 not starting or ending with "-"; at most 253 bytes
//! DeviceId      = 1..=64 of [A-Za-z0-9._-]
//! DeviceAddress = UserId "/" DeviceId              (the peer name of one device)
//! ```
//! Nothing is normalised: an id with an upper-case letter, a space or a second `@` is
//! refused, never rewritten, so two encodings of one name cannot exist. An app that
//! accepts mixed-case email from users lowercases it before building a [`UserId`].
//! Neither part may hold `/`, so an address splits in exactly one way.

use core::fmt;

use thiserror::Error;

use crate::wire::{DecodeError, Reader};

/// Longest user id, in bytes (an email address).
pub const MAX_USER_ID_BYTES: usize = 254;
/// Longest device id, in bytes.
pub const MAX_DEVICE_ID_BYTES: usize = 64;
/// Longest device address (`user/device`), in bytes.
pub const MAX_ADDRESS_BYTES: usize = MAX_USER_ID_BYTES + 1 + MAX_DEVICE_ID_BYTES;

const MAX_LOCAL_BYTES: usize = 64;
const MAX_DOMAIN_BYTES: usize = 253;
const MAX_LABEL_BYTES: usize = 63;

/// Why a user id, device id or address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AddressError {
    /// Not a canonical user id (lowercase official email).
    #[error("invalid user id: {0}")]
    InvalidUserId(&'static str),
    /// Not a valid device id.
    #[error("invalid device id: {0}")]
    InvalidDeviceId(&'static str),
    /// Not `user/device`.
    #[error("invalid device address")]
    InvalidAddress,
}

/// A user's official email address, in canonical (lowercase ASCII) form.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(String);

impl UserId {
    /// Checks `s` against the grammar above; refuses (never rewrites) anything else.
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        let bad = AddressError::InvalidUserId;
        if s.len() < 3 || s.len() > MAX_USER_ID_BYTES {
            return Err(bad("length"));
        }
        let (local, domain) = s.split_once('@').ok_or(bad("no @"))?;
        if local.is_empty() || local.len() > MAX_LOCAL_BYTES {
            return Err(bad("local part length"));
        }
        if !local.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._+-".contains(&b)) {
            return Err(bad("local part character"));
        }
        check_domain(domain).map_err(bad)?;
        Ok(UserId(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after `@`, which agency certificates constrain.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

/// Checks an email domain (also the form of an agency's domain constraint).
pub fn check_domain(domain: &str) -> Result<(), &'static str> {
    if domain.is_empty() || domain.len() > MAX_DOMAIN_BYTES {
        return Err("domain length");
    }
    let mut labels = 0;
    for label in domain.split('.') {
        labels += 1;
        if label.is_empty() || label.len() > MAX_LABEL_BYTES {
            return Err("domain label length");
        }
        if !label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err("domain character");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("domain label hyphen");
        }
    }
    if labels < 2 {
        return Err("domain needs two labels");
    }
    Ok(())
}

/// One device of a user: 1 to 64 bytes of `[A-Za-z0-9._-]`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(String);

impl DeviceId {
    /// Checks `s`; refuses anything outside the alphabet or the length.
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        if s.is_empty() || s.len() > MAX_DEVICE_ID_BYTES {
            return Err(AddressError::InvalidDeviceId("length"));
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
            return Err(AddressError::InvalidDeviceId("character"));
        }
        Ok(DeviceId(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A device of a user: the peer name under which a [`Device`](crate::Device) keeps its
/// session and pinned identity for that device, `user/device`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceAddress {
    user: UserId,
    device: DeviceId,
}

impl DeviceAddress {
    /// The address of `device` of `user`.
    pub fn new(user: UserId, device: DeviceId) -> Self {
        DeviceAddress { user, device }
    }

    /// Splits `user/device` at its only `/`, checking both parts.
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        let (user, device) = s.split_once('/').ok_or(AddressError::InvalidAddress)?;
        Ok(DeviceAddress { user: UserId::parse(user)?, device: DeviceId::parse(device)? })
    }

    /// The user.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The device.
    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    /// `user/device`: the peer name to use with the `Device` API.
    pub fn peer_name(&self) -> String {
        format!("{}/{}", self.user.0, self.device.0)
    }
}

/// Reads a `u8 length || UTF-8` string: the bytes first (a short input is
/// `Truncated`), then the UTF-8 check (`InvalidValue(field)`).
fn read_short<'a>(r: &mut Reader<'a>, field: &'static str) -> Result<&'a str, DecodeError> {
    let n = usize::from(r.u8()?);
    core::str::from_utf8(r.bytes(n)?).map_err(|_| DecodeError::InvalidValue(field))
}

/// Reads a `u8 length || UTF-8` user id and checks it is canonical (`InvalidValue("user id")`).
/// The one reader of user ids in device lists, endorsements and the device state.
pub(crate) fn read_user_id(r: &mut Reader<'_>) -> Result<UserId, DecodeError> {
    UserId::parse(read_short(r, "user id")?).map_err(|_| DecodeError::InvalidValue("user id"))
}

/// Reads a `u8 length || UTF-8` device id and checks it (`InvalidValue("device id")`). The one
/// reader of device ids in device lists, endorsements, provisioning offers and the state.
pub(crate) fn read_device_id(r: &mut Reader<'_>) -> Result<DeviceId, DecodeError> {
    DeviceId::parse(read_short(r, "device id")?).map_err(|_| DecodeError::InvalidValue("device id"))
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.0)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({})", self.0)
    }
}

impl fmt::Display for DeviceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.user.0, self.device.0)
    }
}

impl fmt::Debug for DeviceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceAddress({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_user_ids_only() {
        let u = UserId::parse("aminah.binti-ali@mof.gov.my").unwrap();
        assert_eq!(u.domain(), "mof.gov.my");
        for bad in [
            "",
            "a@b",
            "Aminah@mof.gov.my",
            "a@@mof.gov.my",
            "a b@mof.gov.my",
            "a@mof",
            "a@-mof.gov.my",
            "a@mof..gov.my",
            "a/b@mof.gov.my",
            "@mof.gov.my",
            "a@MOF.gov.my",
            "a@mof.gov.my.",
        ] {
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
        let long_local = format!("{}@mof.gov.my", "a".repeat(65));
        assert!(UserId::parse(&long_local).is_err());
    }

    #[test]
    fn addresses_split_once() {
        let a = DeviceAddress::parse("aminah@mof.gov.my/phone-1").unwrap();
        assert_eq!(a.user().as_str(), "aminah@mof.gov.my");
        assert_eq!(a.device().as_str(), "phone-1");
        assert_eq!(a.peer_name(), "aminah@mof.gov.my/phone-1");
        assert_eq!(DeviceAddress::parse(&a.peer_name()).unwrap(), a);
        for bad in ["aminah@mof.gov.my", "aminah@mof.gov.my/", "aminah@mof.gov.my/a/b", "/phone", "x/phone"] {
            assert!(DeviceAddress::parse(bad).is_err(), "{bad:?}");
        }
        assert!(DeviceId::parse(&"d".repeat(64)).is_ok());
        assert!(DeviceId::parse(&"d".repeat(65)).is_err());
    }
}
