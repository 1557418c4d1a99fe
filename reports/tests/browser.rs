//! `index.html` and every plot file as a browser sees them: the page for the committed
//! sweep fixture is written with its `plot-*.png` and `plot-*.svg` files to a temporary
//! folder and opened in headless Chromium. A copy of the page gets a script that waits for
//! the load, checks that every inline SVG has a size and paints, that every plot file
//! loads as an image at its size, that nothing outside the folder was fetched, and that no
//! error happened; it writes what it found into the page, which Chromium's `--dump-dom`
//! prints. Chromium's console lines on stderr must be empty: the page itself has no script.
//!
//! Needs Chromium: `apt-get install -y chromium` on Debian and Ubuntu (the README's set-up
//! installs it), or point `IRQSIM_CHROMIUM` at a Chromium or Chrome binary. Without one
//! the test fails and says so; it never skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reports::plot::Plot;

/// How to get a browser, for the failure message.
const INSTALL: &str = "install Chromium with `apt-get install -y chromium` (Debian/Ubuntu, as root; about 155 MB \
                       to download, 480 MB installed), or set IRQSIM_CHROMIUM to a Chromium or Chrome binary";

/// The longest a page may take to load and check.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The browser binary: `IRQSIM_CHROMIUM`, else the first of the usual names on `PATH`.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("IRQSIM_CHROMIUM") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "IRQSIM_CHROMIUM is {}, which is not a file; {INSTALL}", path.display());
        return path;
    }
    let names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"];
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("this test opens the report page in headless Chromium, and none was found on PATH (looked for {}): {INSTALL}", names.join(", ")))
}

/// A fresh folder under the system's temporary directory.
fn scratch_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("irqsim-browser-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    dir
}

/// The check, run in the page: collects load errors from the start, and after the load
/// (and after every inline SVG has been painted onto a canvas) writes a JSON summary into
/// `#irqsim-check`.
const CHECK_SCRIPT: &str = r#"<script>
(() => {
  const errors = [];
  window.addEventListener('error', (e) => {
    const t = e.target;
    if (t && t !== window && t.tagName) {
      errors.push('failed to load <' + t.tagName.toLowerCase() + '> ' + (t.getAttribute('src') || t.getAttribute('href')));
    } else {
      errors.push('error: ' + e.message);
    }
  }, true);
  window.addEventListener('unhandledrejection', (e) => errors.push('unhandled rejection: ' + e.reason));
  // Paints an inline SVG onto a canvas (as an image of its own markup) and counts the
  // pixels that are not white.
  const painted = (svg) => new Promise((resolve) => {
    const img = new Image();
    img.onload = () => {
      const c = document.createElement('canvas');
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const g = c.getContext('2d');
      g.fillStyle = '#fff';
      g.fillRect(0, 0, c.width, c.height);
      g.drawImage(img, 0, 0);
      const d = g.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250) n++;
      resolve(n);
    };
    img.onerror = () => resolve(-1);
    img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(new XMLSerializer().serializeToString(svg));
  });
  window.addEventListener('load', async () => {
    const out = document.getElementById('irqsim-check');
    try {
      const images = [...document.querySelectorAll('#irqsim-files img')].map((i) => ({
        src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
      }));
      const svgs = [];
      for (const svg of document.querySelectorAll('main figure > svg')) {
        const r = svg.getBoundingClientRect();
        svgs.push({ id: svg.parentElement.id, width: r.width, height: r.height,
                    texts: svg.querySelectorAll('text').length, painted: await painted(svg) });
      }
      const fetched = performance.getEntriesByType('resource').map((e) => e.name)
        .filter((n) => !n.startsWith('file:') && !n.startsWith('data:'));
      out.textContent = JSON.stringify({ title: document.title, errors, images, svgs, fetched });
    } catch (e) {
      out.textContent = JSON.stringify({ title: document.title, errors: errors.concat(['check failed: ' + e]) });
    }
  });
})();
</script>
"#;

/// The page with the check: the script in the head (so it sees every load error), the
/// plot files as images and the result element at the end of the body.
fn check_page(page: &str, plots: &[Plot]) -> String {
    let mut files = String::from("<div id=\"irqsim-files\">\n");
    for p in plots {
        files.push_str(&format!("<img src=\"{0}.png\" alt=\"\">\n<img src=\"{0}.svg\" alt=\"\">\n", p.name));
    }
    files.push_str("</div>\n<pre id=\"irqsim-check\"></pre>\n");
    let head = page.find("</head>").expect("the page has a head");
    let with_script = format!("{}{CHECK_SCRIPT}{}", &page[..head], &page[head..]);
    let body = with_script.rfind("</body>").expect("the page has a body");
    format!("{}{files}{}", &with_script[..body], &with_script[body..])
}

/// Runs Chromium on `url`, returning (dumped DOM, stderr) and the wall time.
fn dump_dom(browser: &Path, dir: &Path, url: &str) -> (String, String, Duration) {
    let (out, err) = (dir.join("dom.html"), dir.join("chromium.log"));
    let started = Instant::now();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            // Any attempt to reach the network fails (and the page would say it fetched).
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
            // Wait for the load, the check's promises included, before dumping.
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("a file for the DOM"))
        .stderr(std::fs::File::create(&err).expect("a file for the log"))
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {}: {e}; {INSTALL}", browser.display()));
    loop {
        match child.try_wait().expect("waiting for Chromium") {
            Some(status) => {
                let dom = std::fs::read_to_string(&out).unwrap_or_default();
                let log = std::fs::read_to_string(&err).unwrap_or_default();
                assert!(status.success(), "{} exited with {status}; its log:\n{log}", browser.display());
                return (dom, log, started.elapsed());
            }
            None if started.elapsed() > TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not finish within {TIMEOUT:?} on {url}", browser.display());
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The text of the element `#id` in a dumped DOM, entities decoded.
fn element_text(dom: &str, id: &str) -> Option<String> {
    let open = format!("<pre id=\"{id}\">");
    let start = dom.find(&open)? + open.len();
    let end = start + dom[start..].find("</pre>")?;
    Some(dom[start..end].replace("&lt;", "<").replace("&gt;", ">").replace("&nbsp;", "\u{a0}").replace("&amp;", "&"))
}

/// A PNG's width and height from its header.
fn png_size(png: &[u8]) -> (u64, u64) {
    let be = |b: &[u8]| u64::from(u32::from_be_bytes(b.try_into().unwrap()));
    (be(&png[16..20]), be(&png[20..24]))
}

#[test]
fn report_page_and_plot_files_render_in_headless_chromium() {
    let browser = chromium();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sweep.json");
    let report = reports::read_report(&fixture).expect("the fixture reads");
    let plots = reports::plot::plots(&report).expect("plots draw");
    assert_eq!(plots.len(), 5, "the fixture has data for every plot");
    let page = reports::html::html(&report, &plots);

    let dir = scratch_dir();
    for p in &plots {
        std::fs::write(dir.join(format!("{}.png", p.name)), &p.png).unwrap();
        std::fs::write(dir.join(format!("{}.svg", p.name)), &p.svg).unwrap();
    }
    std::fs::write(dir.join("index.html"), &page).unwrap();
    std::fs::write(dir.join("check.html"), check_page(&page, &plots)).unwrap();

    let url = format!("file://{}", dir.join("check.html").display());
    let (dom, log, took) = dump_dom(&browser, &dir, &url);
    eprintln!("{} rendered {url} in {took:.2?}", browser.display());

    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages from the page:\n{}", console.join("\n"));
    let json = element_text(&dom, "irqsim-check").unwrap_or_else(|| {
        panic!("the page's check left no result (did its script run?); the DOM:\n{dom}\nthe log:\n{log}")
    });
    let check: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("the check's result is not JSON ({e}): {json}"));
    assert!(!json.is_empty() && check["errors"].as_array().is_some_and(Vec::is_empty), "errors in the page: {json}");
    assert_eq!(check["title"], "irqsim report: nvme-bare-metal");
    assert_eq!(check["fetched"], serde_json::json!([]), "the page fetched something outside its folder");

    // Every plot file loads as an image at its drawn size.
    let images = check["images"].as_array().expect("images");
    assert_eq!(images.len(), 2 * plots.len());
    for (p, pair) in plots.iter().zip(images.chunks(2)) {
        let (w, h) = png_size(&p.png);
        for (image, ext) in pair.iter().zip(["png", "svg"]) {
            assert_eq!(image["src"], format!("{}.{ext}", p.name));
            assert_eq!(image["complete"], true, "{image}");
            assert_eq!((image["width"].as_u64(), image["height"].as_u64()), (Some(w), Some(h)), "{image}");
        }
    }

    // Every inline SVG has a size, all its text, and paints.
    let svgs = check["svgs"].as_array().expect("svgs");
    assert_eq!(svgs.len(), plots.len());
    for (p, svg) in plots.iter().zip(svgs) {
        assert_eq!(svg["id"], p.name.as_str());
        let (w, h) = (svg["width"].as_f64().unwrap(), svg["height"].as_f64().unwrap());
        assert!(w >= 400.0 && h >= 200.0, "{svg}: laid out at {w}×{h}");
        let (pw, ph) = png_size(&p.png);
        assert!((w / h - pw as f64 / ph as f64).abs() < 0.01, "{svg}: keeps its aspect ratio");
        assert_eq!(svg["texts"].as_u64(), Some(p.svg.matches("<text").count() as u64), "{svg}");
        // Painted: at least 1% of the picture is not white (axes, text, data).
        let painted = svg["painted"].as_i64().unwrap();
        assert!(painted as f64 >= 0.01 * (pw * ph) as f64, "{svg}: {painted} painted pixels");
    }
    std::fs::remove_dir_all(&dir).ok();
}
