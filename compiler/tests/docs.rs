//! `docs/language.md` is true to the compiler: its tables of fields, surface fields,
//! named values and set element types are rendered here from the compiler's own tables
//! and must equal the text between `<!-- generated:NAME -->` and `<!-- end:NAME -->`.
//! Run with `UPDATE_DOCS=1` to rewrite those sections after changing a table.

use pfc_compiler::check::{names, MAX_CONST_CHAIN};
use pfc_compiler::fields::{Field, FieldSource, ValueKind, MAX_IPV6_EXT_HEADERS, MAX_VLAN_TAGS};
use pfc_compiler::syntax::MAX_NESTING;

fn type_name(kind: ValueKind) -> String {
    match kind {
        ValueKind::Uint(1) => "flag (u1)".to_string(),
        ValueKind::Uint(bits) => format!("u{bits}"),
        ValueKind::Mac => "MAC address".to_string(),
        ValueKind::Ipv4 => "IPv4 address".to_string(),
        ValueKind::Ipv6 => "IPv6 address".to_string(),
    }
}

fn source_text(source: FieldSource) -> String {
    match source {
        FieldSource::Header { offset, size, shift, mask, add, .. } => {
            let mut text =
                if size == 1 { format!("byte {offset}") } else { format!("bytes {offset}–{}", offset + size - 1) };
            if shift > 0 {
                text += &format!(" >> {shift}");
            }
            if mask != u128::MAX {
                text += &format!(" & {mask:#x}");
            }
            if add > 0 {
                text += &format!(" + {add}");
            }
            text
        }
        FieldSource::PayloadEthertype => "ethertype after up to two VLAN tags".to_string(),
        FieldSource::Ipv6UpperProtocol => "next header after the extension headers".to_string(),
        FieldSource::PacketLength => "length of the frame".to_string(),
    }
}

/// The named-value tables, with the headings the doc uses for them.
fn named_tables() -> Vec<(&'static str, &'static [(&'static str, u128)])> {
    vec![
        ("TCP flags", names::TCP_FLAGS),
        ("ICMP types", names::ICMP_TYPES),
        ("ICMPv6 types", names::ICMP6_TYPES),
        ("IP protocols", names::IP_PROTOCOLS),
        ("Ethertypes", names::ETHERTYPES),
        ("ARP operations", names::ARP_OPS),
        ("Services (ports)", names::SERVICES),
    ]
}

fn named_table_of(field: Field) -> &'static str {
    let table = names::named_values(field);
    named_tables()
        .into_iter()
        .find(|(_, candidate)| !table.is_empty() && *candidate == table)
        .map_or("", |(name, _)| name)
}

fn fields_section() -> String {
    let mut text = String::from(
        "| Field | Type | Header (guard) | Read from (offsets in the header) | Named values |\n|---|---|---|---|---|\n",
    );
    for &field in Field::ALL {
        let guard = field.guard().map_or("— (always known)".to_string(), |proto| format!("`{}`", proto.name()));
        text += &format!(
            "| `{}` | {} | {guard} | {} | {} |\n",
            field.name(),
            type_name(field.kind()),
            source_text(field.source()),
            named_table_of(field)
        );
    }
    text
}

fn surface_section() -> String {
    let mut text = String::from("| Surface field | Stands for |\n|---|---|\n");
    for name in names::surface_field_names() {
        let Some(surface) = names::surface_field(name) else { continue };
        if surface.fields.len() > 1 {
            let fields: Vec<String> = surface.fields.iter().map(|field| format!("`{}`", field.name())).collect();
            text += &format!("| `{name}` | {} |\n", fields.join(", "));
        }
    }
    text
}

fn named_values_section() -> String {
    let mut text = String::new();
    for (heading, table) in named_tables() {
        let entries: Vec<String> = table.iter().map(|(name, value)| format!("`{name}` = {value}")).collect();
        text += &format!("- **{heading}:** {}\n", entries.join(", "));
    }
    text
}

fn set_types_section() -> String {
    let mut text = String::from("| Element type | Holds | Named values allowed |\n|---|---|---|\n");
    for &name in names::SET_ELEMENT_TYPES {
        let Some((kinds, named)) = names::set_element_type(name) else { continue };
        let holds: Vec<String> = kinds.iter().map(|kind| type_name(*kind)).collect();
        let named =
            named_tables().into_iter().find(|(_, table)| !named.is_empty() && *table == named).map_or("—", |(h, _)| h);
        text += &format!("| `{name}` | {} | {named} |\n", holds.join(" or "));
    }
    text
}

fn limits_section() -> String {
    format!(
        "- Nesting: at most **{MAX_NESTING}** parentheses and `not`s nested in one statement (error E0002).\n\
         - Constants: a name may lead through at most **{MAX_CONST_CHAIN}** constants (the name itself counts when it is one) before reaching a value or a set (error E0007).\n\
         - VLAN tags: at most **{MAX_VLAN_TAGS}** (802.1Q `0x8100` / 802.1ad `0x88a8`) are parsed.\n\
         - IPv6 extension headers: at most **{MAX_IPV6_EXT_HEADERS}** are walked.\n"
    )
}

#[test]
fn language_reference_tables_match_the_compiler() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/language.md");
    let mut doc = std::fs::read_to_string(path).expect("docs/language.md exists");
    let update = std::env::var_os("UPDATE_DOCS").is_some();
    let sections = [
        ("fields", fields_section()),
        ("surface-fields", surface_section()),
        ("named-values", named_values_section()),
        ("set-types", set_types_section()),
        ("limits", limits_section()),
    ];
    let mut stale = Vec::new();
    for (name, rendered) in sections {
        let (begin, end) = (format!("<!-- generated:{name} -->\n"), format!("<!-- end:{name} -->"));
        let start = doc.find(&begin).unwrap_or_else(|| panic!("docs/language.md lacks `{begin}`")) + begin.len();
        let stop = start + doc[start..].find(&end).unwrap_or_else(|| panic!("docs/language.md lacks `{end}`"));
        if doc[start..stop] != rendered {
            stale.push(name);
            doc.replace_range(start..stop, &rendered);
        }
    }
    if update && !stale.is_empty() {
        std::fs::write(path, &doc).expect("rewrite docs/language.md");
    } else {
        assert!(stale.is_empty(), "docs/language.md is out of date in {stale:?}; run with UPDATE_DOCS=1");
    }
}
