//! Every content kind a plugin can return reaches every client path as the MCP block it is:
//! audio, and embedded resources (text) next to text and images, from the conformance fixture.

use base64::Engine as _;
use rmcp::model::{ContentBlock, ResourceContents};

use crate::support::{ALL_PATHS, TestServer, connect, no_args};

fn decode(data: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(data).expect("base64")
}

#[tokio::test]
async fn audio_and_embedded_resources_reach_every_client() {
    let server = TestServer::start(&["conformance.wasm"]).await;
    for path in ALL_PATHS {
        let (client, _) = connect(&server, path).await;

        let audio = client.call_tool(no_args("conformance__test_audio_content")).await.expect("call");
        match &audio.content[..] {
            [ContentBlock::Audio(a)] => {
                assert_eq!(a.mime_type, "audio/wav", "{path:?}");
                assert!(decode(&a.data).starts_with(b"RIFF"), "{path:?}: a WAV file");
            }
            other => panic!("{path:?}: expected one audio block, got {other:?}"),
        }

        let embedded = client.call_tool(no_args("conformance__test_embedded_resource")).await.expect("call");
        match &embedded.content[..] {
            [ContentBlock::Resource(r)] => assert_eq!(
                r.resource,
                ResourceContents::TextResourceContents {
                    uri: "test://embedded-resource".into(),
                    mime_type: Some("text/plain".into()),
                    text: "This is an embedded resource content.".into(),
                    meta: None,
                },
                "{path:?}"
            ),
            other => panic!("{path:?}: expected one resource block, got {other:?}"),
        }

        let mixed = client.call_tool(no_args("conformance__test_multiple_content_types")).await.expect("call");
        match &mixed.content[..] {
            [ContentBlock::Text(t), ContentBlock::Image(i), ContentBlock::Resource(r)] => {
                assert_eq!(t.text, "Multiple content types test:", "{path:?}");
                assert!(decode(&i.data).starts_with(b"\x89PNG"), "{path:?}");
                let ResourceContents::TextResourceContents { uri, mime_type, text, .. } = &r.resource else {
                    panic!("{path:?}: a text resource, got {r:?}");
                };
                assert_eq!(
                    (uri.as_str(), mime_type.as_deref()),
                    ("test://mixed-content-resource", Some("application/json"))
                );
                assert_eq!(serde_json::from_str::<serde_json::Value>(text).expect("JSON")["value"], 123);
            }
            other => panic!("{path:?}: expected text, image and resource, got {other:?}"),
        }
        client.cancel().await.expect("close");
    }
}
