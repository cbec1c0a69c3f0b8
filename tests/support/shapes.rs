//! The JSON documents pfc prints, pinned by shape to their `schema` version. The table is
//! shared by `tests/cli_conventions.rs` (documents any user can produce, and the examples
//! of docs/cli.md) and `tests/load_attach.rs` (`status` and `stats`, which need a kernel).

use serde_json::Value;

/// The shape of a JSON value: object keys (sorted) with their shapes, the shape of an
/// array's first element, and the type of everything else; a `null` under a key of its
/// schema's [`NULLABLE`] fields has the shape pinned for it there.
pub fn shape(value: &Value) -> String {
    let schema = value["schema"].as_str().unwrap_or_default();
    let nullable: Vec<(&str, &str)> =
        NULLABLE.iter().filter(|(name, ..)| *name == schema).map(|(_, key, shape)| (*key, *shape)).collect();
    shape_with(value, &nullable)
}

/// Fields that are `null` where they do not apply: (schema, key, the shape when they
/// do). A document of that schema has the same shape either way, so its pin holds for
/// every document, whatever its first array element happens to be.
#[rustfmt::skip]
pub const NULLABLE: &[(&str, &str, &str)] = &[
    // A rule without a rate limit (or whose object does not count it).
    ("pfc.stats/2", "limit", "{over:number,within:number}"),
];

fn shape_with(value: &Value, nullable: &[(&str, &str)]) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(_) => "bool".to_string(),
        Value::Number(_) => "number".to_string(),
        Value::String(_) => "string".to_string(),
        Value::Array(items) => {
            format!("[{}]", items.first().map(|item| shape_with(item, nullable)).unwrap_or_default())
        }
        Value::Object(map) => {
            let field = |(key, value): (&String, &Value)| {
                let pinned = nullable.iter().find(|(name, _)| name == key).map(|(_, shape)| shape.to_string());
                let shape = pinned.filter(|_| value.is_null()).unwrap_or_else(|| shape_with(value, nullable));
                format!("{key}:{shape}")
            };
            let fields: Vec<String> = map.iter().map(field).collect();
            format!("{{{}}}", fields.join(","))
        }
    }
}

/// The shape of every schema version, as released. A shape change needs a new version
/// (and its example in docs/cli.md), never an edit here.
#[rustfmt::skip]
pub const SHAPES: &[(&str, &str)] = &[
    ("pfc.diagnostics/2", "{diagnostics:[{code:string,column:number,file:string,labels:[{column:number,end_column:number,end_line:number,file:string,line:number,message:string,primary:bool}],line:number,message:string,notes:[string],severity:string}],schema:string}"),
    ("pfc.capture/2", "{capture:string,default:{bytes:number,packets:number,verdict:string},direction:string,dropped:number,mac:string,not_judged:number,packets:number,passed:number,rules:[{bytes:number,name:string,packets:number,verdict:string}],rules_file:string,schema:string,skipped:number}"),
    ("pfc.test/2", "{backend:string,cases:[{actual:{rule:string,verdict:string},events:[],expected:{log:null,rule:string,verdict:string},line:number,name:string,packet:string,passed:bool,skipped:null,spec:string}],cases_file:string,executor:string,failed:number,passed:number,rules:string,schema:string,skipped:number,uncovered:[string]}"),
    ("pfc.diff/1", "{differs:bool,equivalent:bool,regions:[{confirmed:bool,new:{rule:string,verdict:string},old:{rule:string,verdict:string},packets:string,witness:string}],schema:string}"),
    // `fields` maps the fields the rules read to their values: its keys are those of the
    // run in tests/cli_conventions.rs and of the example in docs/cli.md (the same input).
    ("pfc.explain/1", "{fields:{tcp.dport:string},packet:{hex:string,len:number,summary:string},rule:string,rules:[{atoms:[{atom:string,field:string,holds:bool,inside_not:bool,value:string}],location:string,matched:bool,rule:string,verdict:string}],schema:string,verdict:string}"),
    // Version 1 had no `sets`.
    ("pfc.status/2", "{filters:[{default:string,hook:string,iface:string,labels:null,link_id:number,loaded_at:string,mode:string,pfc_version:string,prog_id:number,rules:number,sets:[{count:number,kind:string,name:string,size:number,type:string}],source:string,source_hash:string,state:string}],schema:string}"),
    // Version 1 had no `limit`.
    ("pfc.stats/2", "{default:{bytes:number,bytes_per_second:null,packets:number,packets_per_second:null,verdict:string},hook:string,iface:string,labels:null,prog_id:number,rules:[{bytes:number,bytes_per_second:null,limit:{over:number,within:number},name:string,packets:number,packets_per_second:null,verdict:string}],schema:string,time:string,time_unix_ms:number}"),
    ("pfc.watch/1", "{bytes:string,captured:number,frame_len:number,hook:string,iface:string,ifindex:number,prog_id:number,rule:string,rule_index:number,schema:string,summary:string,time:string,time_unix_ns:number,verdict:string}"),
    ("pfc.watch-stats/1", "{dropped:number,end:bool,prog_id:number,rules:[{dropped:number,rule:string,sent:number}],schema:string,time:string}"),
    ("pfc.set/1", "{count:number,elements:[string],hook:string,iface:string,kind:string,schema:string,set:string,size:number,type:string}"),
];

/// Whether `actual` (a [`shape`]) is `pinned`, where an empty array (`[]`) in `actual`
/// stands for an array of any element shape in `pinned` (a filter without sets).
pub fn fits(actual: &str, pinned: &str) -> bool {
    let (actual, pinned) = (actual.as_bytes(), pinned.as_bytes());
    let (mut a, mut p) = (0, 0);
    while a < actual.len() && p < pinned.len() {
        if actual[a..].starts_with(b"[]") && pinned[p] == b'[' {
            // Skip the pinned array's element shape, brackets balanced.
            let mut depth = 0;
            while p < pinned.len() {
                depth += match pinned[p] {
                    b'[' => 1,
                    b']' => -1,
                    _ => 0,
                };
                p += 1;
                if depth == 0 {
                    break;
                }
            }
            a += 2;
        } else if actual[a] == pinned[p] {
            a += 1;
            p += 1;
        } else {
            return false;
        }
    }
    a == actual.len() && p == pinned.len()
}

/// Asserts that `value` has the shape pinned for its `schema` (empty arrays fit any
/// element shape, see [`fits`]); returns the schema.
pub fn assert_pinned(value: &Value) -> String {
    let schema = value["schema"].as_str().unwrap_or_else(|| panic!("no schema in {value}")).to_string();
    let pinned = SHAPES.iter().find(|(name, _)| *name == schema).map(|(_, shape)| *shape);
    let actual = shape(value);
    assert!(
        pinned.is_some_and(|pinned| fits(&actual, pinned)),
        "{schema}: the shape changed; give it a new schema version\n  actual: {actual}\n  pinned: {pinned:?}"
    );
    schema
}
