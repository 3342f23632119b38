//! Reading an internally tagged enum whose tag is the object's first key, without serde's
//! buffer.
//!
//! serde reads an internally tagged enum (`{"type": "joined", "channel": …}`) whole into a
//! buffer of its own before it looks at the tag, then reads the variant again from the buffer.
//! That machinery, instantiated for every variant and every type inside one, was a third of
//! the browser bundle. A server event always has `"type"` first (serde writes the tag first),
//! so the browser can read the tag, then the variant straight from the rest of the object:
//! [`deserialize`] reads the tag and hands the rest to the enum's externally tagged reading
//! (a `#[serde(remote = "…")]` twin of the enum, see [`ByName`]), so every field attribute is
//! still serde's own.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, StrDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, VariantAccess, Visitor};

/// An enum read by the name of its variant (serde's externally tagged form), given the tag as
/// that name and the rest of the object as the variant's fields.
pub(crate) trait ByName: Sized {
    /// The tag's key, e.g. `"type"`.
    const TAG: &'static str;

    /// The derived externally tagged reading, fed by a [`Variant`].
    fn by_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

/// Reads `T` from an object whose first key is `T::TAG`.
pub(crate) fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: ByName,
{
    deserializer.deserialize_map(TagFirst(PhantomData))
}

struct TagFirst<T>(PhantomData<T>);

impl<'de, T: ByName> Visitor<'de> for TagFirst<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an object whose first key is \"{}\"", T::TAG)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        // The key is compared as it is read (no allocation); the tag's value is kept while the
        // variant is read.
        match map.next_key_seed(Key(T::TAG))? {
            Some(true) => {}
            _ => return Err(de::Error::custom(format_args!("\"{}\" must be the first key", T::TAG))),
        }
        let tag: String = map.next_value()?;
        T::by_name(Variant { tag: &tag, map })
    }
}

/// Reads a key, answering whether it is the expected one.
struct Key(&'static str);

impl<'de> DeserializeSeed<'de> for Key {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// The rest of the object, presented to the externally tagged reading as the variant named
/// `tag` with the remaining entries as its fields.
pub(crate) struct Variant<'t, A> {
    tag: &'t str,
    map: A,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for Variant<'_, A> {
    type Error = A::Error;

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, A::Error> {
        Err(de::Error::custom("only an enum is read by its tag"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

impl<'de, A: MapAccess<'de>> EnumAccess<'de> for Variant<'_, A> {
    type Error = A::Error;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), A::Error> {
        let name = seed.deserialize(StrDeserializer::<A::Error>::new(self.tag))?;
        Ok((name, self))
    }
}

impl<'de, A: MapAccess<'de>> VariantAccess<'de> for Variant<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        // Whatever else the object holds is read and ignored, as serde's own reading would.
        let mut map = self.map;
        while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        seed.deserialize(MapAccessDeserializer::new(self.map))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, A::Error> {
        Err(de::Error::custom("a tagged variant has fields, not a tuple"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.map)
    }
}

/// `D`, with a struct read only from an object. serde_json would read a struct from an array of
/// its fields too, and the derived code for that is as large as the code reading an object; no
/// event carries one, so the browser need not carry that code (`read_from_objects!`).
pub(crate) struct MapOnly<D>(pub(crate) D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for MapOnly<D> {
    type Error = D::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// Gives structs declared `#[serde(remote = "Self")]` their `Serialize` (the derived one) and a
/// `Deserialize` that reads them from objects only ([`MapOnly`]).
macro_rules! read_from_objects {
    ($($ty:ident),* $(,)?) => {$(
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                $ty::serialize(self, serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $ty::deserialize($crate::protocol::tag_first::MapOnly(deserializer))
            }
        }
    )*};
}
pub(crate) use read_from_objects;

/// Defines an internally tagged enum (`$tag`, snake_case variants) once, with two readings of
/// the same variants: serde's internally tagged writing, and a twin (`$twin`, named
/// `#[serde(remote = $name)]` so that it builds the enum itself) read by variant name, which
/// [`deserialize`] feeds with the object's first key. Every variant and field attribute is
/// written once, inside the macro.
macro_rules! tagged_enum {
    ($tag:literal, $name:literal, $twin:ident, $(#[$attr:meta])* pub enum $enum:ident { $($variants:tt)* }) => {
        $(#[$attr])*
        #[derive(serde::Serialize)]
        #[serde(tag = $tag, rename_all = "snake_case")]
        pub enum $enum { $($variants)* }

        #[derive(serde::Deserialize)]
        #[serde(remote = $name, rename_all = "snake_case")]
        #[allow(dead_code)] // only its derived reading is used
        enum $twin { $($variants)* }

        impl $crate::protocol::tag_first::ByName for $enum {
            const TAG: &'static str = $tag;

            fn by_name<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $twin::deserialize(deserializer)
            }
        }

        /// Read with the tag as the first key, as serde writes it.
        impl<'de> serde::Deserialize<'de> for $enum {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::protocol::tag_first::deserialize(deserializer)
            }
        }
    };
}
pub(crate) use tagged_enum;
