//! A TCP client that stops reading makes its session lag; it must resume at a key frame instead of
//! receiving a backlog.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use media::Codec;
use rtsp_server::{ClipSource, RtspServer};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Reads until the end of one response head; returns (head, bytes read after it).
async fn read_response(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).into_owned();
            return (head, buf[i + 4..].to_vec());
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn slow_tcp_reader_skips_to_key_frame() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/clips/h264_a.h264");
    let clip = Arc::new(ClipSource::from_file(path, Codec::H264).unwrap());
    let server = RtspServer::bind("127.0.0.1:0").await.unwrap();
    server.add_clip_mount("/cam", clip);
    let addr = server.local_addr();
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    let url = format!("rtsp://{addr}/cam");
    s.write_all(
        format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (head, _) = read_response(&mut s).await;
    assert!(head.starts_with("RTSP/1.0 200"), "{head}");
    let session = head
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    s.write_all(
        format!("PLAY {url}/ RTSP/1.0\r\nCSeq: 2\r\nSession: {session}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let (head, mut data) = read_response(&mut s).await;
    assert!(head.starts_with("RTSP/1.0 200"), "{head}");

    // Stop reading long enough for the socket, the write queue and the broadcast buffer to fill.
    tokio::time::sleep(Duration::from_secs(8)).await;

    let mut chunk = vec![0u8; 65536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    while tokio::time::Instant::now() < deadline {
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(200), s.read(&mut chunk)).await
        {
            assert!(n > 0);
            data.extend_from_slice(&chunk[..n]);
        }
    }

    // Parse interleaved RTP: (timestamp, first payload NAL type) per packet on channel 0.
    let mut pkts = Vec::new();
    let mut i = 0;
    while i + 4 <= data.len() {
        assert_eq!(data[i], b'$', "interleaved framing lost at {i}");
        let len = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        if i + 4 + len > data.len() {
            break;
        }
        let p = &data[i + 4..i + 4 + len];
        if data[i + 1] == 0 {
            let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
            pkts.push((ts, p[12] & 0x1f));
        }
        i += 4 + len;
    }
    assert!(pkts.len() > 100, "too few packets: {}", pkts.len());
    let mut gaps = 0;
    for w in pkts.windows(2) {
        let step = w[1].0.wrapping_sub(w[0].0);
        if step != 0 && step != 3600 {
            gaps += 1;
            // Key frames start with their SPS (type 7) in-band.
            assert_eq!(
                w[1].1, 7,
                "after a skip the session must resume at a key frame"
            );
        }
    }
    let frames = pkts.windows(2).filter(|w| w[0].0 != w[1].0).count() + 1;
    assert!(
        gaps >= 1,
        "the stalled session never skipped ahead ({frames} frames, {} bytes)",
        data.len()
    );
    // The first packet is a key frame too.
    assert_eq!(pkts[0].1, 7);
}
