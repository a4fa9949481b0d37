//! Simulcast in Chromium (docs/signalling.md, "Simulcast and quality"): the studio sends its
//! camera as three encodings and a family's quality menu picks the one it decodes; a family
//! whose link is too slow for any video hears the class without loss and is told why it sees
//! nothing. The server and the class as in network.rs; scenarios: `simulcast.mjs`.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use super::network::{setup, with, Setup};
use super::{run_script, run_script_with_steps, script};

const WIDTH: usize = 1280;
const HEIGHT: usize = 720;

/// Two seconds of 1280x720 video at 30 fps as y4m, which Chromium's fake camera plays in a
/// loop: a textured checkerboard sliding diagonally over slowly changing colours, so that
/// every frame differs and the encoder needs its full bitrate at every size.
fn write_camera_file(path: &Path) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create the y4m"));
    writeln!(out, "YUV4MPEG2 W{WIDTH} H{HEIGHT} F30:1 Ip A1:1 C420jpeg").unwrap();
    let mut luma = vec![0u8; WIDTH * HEIGHT];
    let mut chroma = vec![0u8; WIDTH * HEIGHT / 4];
    for frame in 0..60 {
        for (i, y) in luma.iter_mut().enumerate() {
            let (u, v) = (i % WIDTH + 8 * frame, i / WIDTH + 4 * frame);
            let square = if (u / 40 + v / 40) % 2 == 0 { 190 } else { 50 };
            *y = (square + ((u ^ v) & 31)) as u8;
        }
        out.write_all(b"FRAME\n").unwrap();
        out.write_all(&luma).unwrap();
        for plane in [0, 1] {
            for (i, c) in chroma.iter_mut().enumerate() {
                let (x, y) = (i % (WIDTH / 2), i / (WIDTH / 2));
                *c = (96 + (x + y * plane + 2 * frame) % 64) as u8;
            }
            out.write_all(&chroma).unwrap();
        }
    }
    out.flush().unwrap();
}

/// The scenario's config: the server's, `scenario`, and the teacher's camera written into the
/// server's workspace (removed with it).
fn scenario(setup: &Setup, scenario: &str) -> Value {
    let camera = setup.app.workspace.path().join("camera.y4m");
    write_camera_file(&camera);
    with(
        &setup.config,
        json!({"scenario": scenario, "camera": camera}),
    )
}

/// The studio sends l, m and h; the family's menu gets 320x180 for Low, 640x360 for Medium and
/// 1280x720 for High, each decoding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn studio_sends_three_layers_and_a_viewer_choosing_low_decodes_320x180() {
    let setup = setup("layers", None, "").await;
    run_script(&script("simulcast.mjs"), &scenario(&setup, "layers"), 170).await;
}

/// Shapes a network namespace's link: runs alone with the network tests (scripts/test.sh).
mod network_simulcast {
    use super::super::netns::NetNs;
    use super::{run_script_with_steps, scenario, script, setup};

    /// On a 60 kbit/s link (both ways), the family's page says within 20 s that the connection is
    /// weak and the audio loses under 2 % of its packets; at full speed again, video comes back.
    /// (The server sees the collapse within half a second; the notice takes a few seconds more
    /// because the signalling socket retransmits what the video flood cost it.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_family_on_a_60_kbit_link_gets_audio_only_and_is_told() {
        let ns = NetNs::new();
        let setup = setup("weak", Some(&ns), "").await;
        let config = scenario(&setup, "weak");
        run_script_with_steps(&script("simulcast.mjs"), &config, 200, |step| match step {
            "slow link" => ns.shape("60kbit"),
            "fast link" => ns.unshape(),
            other => panic!("simulcast.mjs asked for an unknown step: {other}"),
        })
        .await;
    }
}
