//! Serde helpers that put the field's name into type errors, which serde leaves anonymous
//! («invalid type: integer `5`, expected a string» says nothing about where).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// Deserializes a `T`, prefixing any error with ``invalid `field`: ``.
pub(crate) fn named<'de, D, T>(deserializer: D, field: &str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer)
        .map_err(|error| D::Error::custom(format_args!("invalid `{field}`: {error}")))
}

/// Declares `fn name(deserializer) -> Result<T, _>` functions for `#[serde(deserialize_with)]`.
macro_rules! named_fields {
    ($($function:ident: $type:ty = $field:literal;)*) => {
        $(
            fn $function<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<$type, D::Error> {
                $crate::field::named(deserializer, $field)
            }
        )*
    };
}

pub(crate) use named_fields;
