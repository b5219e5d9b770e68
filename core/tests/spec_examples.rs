//! Every example block in docs/format.md must be the bytes of the vector it names, so the spec
//! cannot drift from the code. A block is introduced by
//! `<!-- example: <file> <vector name> <dot.path> <text|hex> -->` and a ```text fence.

use std::path::Path;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn vector(file: &str, name: &str) -> Value {
    let path = root().join("tests/vectors/format").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let parsed: Value = serde_json::from_str(&text).unwrap();
    parsed["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name} in {file}"))
        .clone()
}

fn render(value: &str, form: &str, hex_field: bool) -> String {
    match form {
        "text" if hex_field => String::from_utf8(hex::decode(value).unwrap()).unwrap(),
        "text" => format!("{value}\n"),
        "hex" => {
            let bytes = hex::decode(value).unwrap();
            let mut out = String::new();
            for chunk in bytes.chunks(16) {
                let line: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
                out.push_str(&line.join(" "));
                out.push('\n');
            }
            out
        }
        other => panic!("unknown example form {other}"),
    }
}

#[test]
fn every_example_in_the_spec_is_a_vector() {
    let spec = std::fs::read_to_string(root().join("docs/format.md")).unwrap();
    let mut checked = Vec::new();
    let mut rest = spec.as_str();
    while let Some(start) = rest.find("<!-- example: ") {
        rest = &rest[start + "<!-- example: ".len()..];
        let end = rest.find(" -->").unwrap();
        let parts: Vec<&str> = rest[..end].split_whitespace().collect();
        let [file, name, path, form] = parts[..] else {
            panic!("bad example marker {}", &rest[..end]);
        };
        let after = &rest[end..];
        let fence = after
            .find("```text\n")
            .expect("example without a ```text block");
        let block_start = fence + "```text\n".len();
        let block_len = after[block_start..].find("```").unwrap();
        let block = &after[block_start..block_start + block_len];
        let mut value = vector(file, name);
        for key in path.split('.') {
            value = value[key].clone();
        }
        let value = value
            .as_str()
            .unwrap_or_else(|| panic!("{name} {path} is not a string"));
        let want = render(value, form, path.ends_with("_hex"));
        assert_eq!(
            block, want,
            "example {name} {path} in docs/format.md differs from the vector"
        );
        checked.push(name.to_owned());
    }
    for required in [
        "segment-basic",
        "manifest-basic",
        "bucket-basic",
        "root-signed",
        "events-basic",
        "seal-segment-uncompressed",
    ] {
        assert!(
            checked.iter().any(|n| n == required),
            "no example of {required}"
        );
    }
}
