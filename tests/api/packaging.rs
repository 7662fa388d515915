//! The packaging recipes, checked as far as this machine allows. It has no container runtime
//! (the docker client, no daemon), so the image is not built here; instead the final stage of
//! `Dockerfile` is read and what it describes is run: the binary alone in an empty directory
//! tree, as the image's user, with the image's environment, answering its health check. The
//! compose file and the systemd unit are checked for settings Latchkey knows, and the unit by
//! `systemd-analyze verify` where it is installed.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::free_port;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(file: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// What the final stage of the Dockerfile says the container is.
struct Image {
    uid: u32,
    gid: u32,
    workdir: String,
    env: BTreeMap<String, String>,
    command: Vec<String>,
    healthcheck: Vec<String>,
}

/// The instructions of the last stage, with continuation lines joined.
fn final_stage(dockerfile: &str) -> Vec<(String, String)> {
    let joined = dockerfile.replace("\\\n", " ");
    let instructions: Vec<(String, String)> = joined
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once(' ').map(|(op, rest)| (op.to_uppercase(), rest.trim().to_owned())))
        .collect();
    let last_from = instructions.iter().rposition(|(op, _)| op == "FROM").expect("a FROM");
    instructions[last_from..].to_vec()
}

/// `["a", "b"]`, the exec form.
fn exec_form(value: &str) -> Vec<String> {
    serde_json::from_str(value).unwrap_or_else(|e| panic!("`{value}` is not the exec form: {e}"))
}

impl Image {
    fn from_dockerfile(dockerfile: &str) -> Self {
        let mut image =
            Image { uid: 0, gid: 0, workdir: "/".into(), env: BTreeMap::new(), command: vec![], healthcheck: vec![] };
        let mut entrypoint = vec![];
        for (op, rest) in final_stage(dockerfile) {
            match op.as_str() {
                "USER" => {
                    let (uid, gid) = rest.split_once(':').unwrap_or((&rest, &rest));
                    image.uid = uid.parse().expect("USER is numeric, so that no name lookup can make it root");
                    image.gid = gid.parse().expect("the group is numeric");
                }
                "WORKDIR" => image.workdir = rest,
                "ENV" => {
                    for pair in rest.split_whitespace() {
                        let (name, value) = pair.split_once('=').expect("ENV NAME=value");
                        image.env.insert(name.to_owned(), value.to_owned());
                    }
                }
                "ENTRYPOINT" => entrypoint = exec_form(&rest),
                "CMD" => image.command = exec_form(&rest),
                "HEALTHCHECK" => {
                    let (_, command) = rest.split_once("CMD ").expect("HEALTHCHECK … CMD [...]");
                    image.healthcheck = exec_form(command);
                }
                _ => {}
            }
        }
        entrypoint.extend(image.command);
        image.command = entrypoint;
        image
    }
}

fn effective_uid() -> u32 {
    std::fs::metadata("/proc/self").expect("a Linux /proc").uid()
}

/// A directory tree `root` with what the image holds: the binary and its working directory.
fn lay_out(root: &Path, image: &Image) -> (PathBuf, PathBuf) {
    let bin = root.join("usr/local/bin");
    std::fs::create_dir_all(&bin).unwrap();
    let binary = bin.join("latchkey");
    std::fs::copy(env!("CARGO_BIN_EXE_latchkey"), &binary).unwrap();
    let workdir = root.join(image.workdir.trim_start_matches('/'));
    std::fs::create_dir_all(&workdir).unwrap();
    // The image's user reaches the binary and owns only its working directory.
    for dir in [
        root.to_path_buf(),
        root.join("usr"),
        root.join("usr/local"),
        bin.clone(),
        root.join("var"),
        root.join("var/lib"),
    ] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&workdir, std::fs::Permissions::from_mode(0o700)).unwrap();
    if effective_uid() == 0 {
        std::os::unix::fs::chown(&workdir, Some(image.uid), Some(image.gid)).unwrap();
    }
    (binary, workdir)
}

#[tokio::test]
async fn the_container_runs_as_its_own_user_with_the_binary_alone() {
    let image = Image::from_dockerfile(&read("Dockerfile"));
    assert_ne!(image.uid, 0, "the image runs as a user of its own, not root");
    assert_eq!(image.command, ["latchkey", "serve"]);
    assert_eq!(image.healthcheck[0], "latchkey");
    assert!(image.env["LATCHKEY_BIND"].starts_with("0.0.0.0:"), "reachable from outside the container");
    let root = tempfile::tempdir().unwrap();
    let (binary, workdir) = lay_out(root.path(), &image);

    // The image's environment, with its paths under the scratch tree and a port of our own;
    // nothing else from this machine.
    let port = free_port();
    let mut env: BTreeMap<String, String> = image
        .env
        .iter()
        .map(|(name, value)| (name.clone(), value.replace(&image.workdir, workdir.to_str().unwrap())))
        .collect();
    env.insert("LATCHKEY_BIND".into(), format!("0.0.0.0:{port}"));
    env.insert("LATCHKEY_MASTER_KEY".into(), latchkey::crypto::MasterKey::generate().encode());
    let as_image_user = |args: &[String]| {
        let mut command = Command::new(&binary);
        command.args(args).current_dir(&workdir).env_clear().envs(&env);
        if effective_uid() == 0 {
            // std drops root's supplementary groups with it.
            command.uid(image.uid).gid(image.gid);
        }
        command
    };

    let mut server = as_image_user(&image.command[1..]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.try_wait().unwrap() {
            let output = server.wait_with_output().unwrap();
            panic!("the server exited ({status}): {}", String::from_utf8_lossy(&output.stderr));
        }
        assert!(Instant::now() < deadline, "the server did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    let health = as_image_user(&image.healthcheck[1..]).output().unwrap();
    assert!(health.status.success(), "the health check passes: {health:?}");

    // Pages, styles and scripts come from the binary itself.
    let http = reqwest::Client::new();
    for path in ["/login", "/static/style.css", "/static/passkey.js", "/.well-known/openid-configuration"] {
        let response = http.get(format!("http://127.0.0.1:{port}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let database = workdir.join("latchkey.db");
    let owner = std::fs::metadata(&database).expect("the database is in the working directory").uid();
    if effective_uid() == 0 {
        assert_eq!(owner, image.uid, "written by the image's user");
    }

    // `docker stop` sends SIGTERM: a clean exit; then the health check fails.
    Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    let stopped = server.wait_with_output().unwrap();
    assert!(stopped.status.success(), "{}", String::from_utf8_lossy(&stopped.stderr));
    let log = String::from_utf8_lossy(&stopped.stderr);
    assert!(log.lines().all(|line| line.starts_with('{')), "JSON log lines, as the image sets: {log}");
    assert_eq!(as_image_user(&image.healthcheck[1..]).output().unwrap().status.code(), Some(1));
}

/// Every `LATCHKEY_*` variable a recipe sets is a setting Latchkey reads (a misspelt one would
/// be silently ignored).
fn settings_named_in(recipe: &str) -> Vec<String> {
    recipe
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("LATCHKEY_"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn compose_and_the_service_unit_set_only_settings_latchkey_reads() {
    let output = Command::new(env!("CARGO_BIN_EXE_latchkey")).args(["config", "--json"]).env_clear().output().unwrap();
    let known: Vec<String> = serde_json::from_slice::<Vec<serde_json::Value>>(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {output:?}"))
        .iter()
        .map(|setting| format!("LATCHKEY_{}", setting["setting"].as_str().unwrap().to_uppercase()))
        .collect();
    assert!(known.contains(&"LATCHKEY_MASTER_KEY".to_owned()), "{known:?}");
    for recipe in ["Dockerfile", "compose.yaml", "contrib/systemd/latchkey.service"] {
        let named = settings_named_in(&read(recipe));
        assert!(!named.is_empty(), "{recipe} configures Latchkey");
        for setting in named {
            assert!(known.contains(&setting), "{recipe} sets {setting}, which Latchkey does not read");
        }
    }
    let compose = read("compose.yaml");
    assert!(
        compose.contains("postgres://latchkey:latchkey@postgres:5432/latchkey"),
        "the app reaches the database service"
    );
    assert!(compose.contains("redis://redis:6379"));
}

#[test]
fn the_service_unit_is_one_systemd_accepts() {
    let unit = read("contrib/systemd/latchkey.service");
    assert!(unit.contains("ExecStart=/usr/local/bin/latchkey serve"));
    assert!(unit.contains("User=latchkey") && unit.contains("NoNewPrivileges=yes"));
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("systemd-analyze is not installed: the unit's syntax is not checked here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latchkey.service");
    std::fs::write(&file, unit.replace("/usr/local/bin/latchkey", env!("CARGO_BIN_EXE_latchkey"))).unwrap();
    let verified = Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&file).output().unwrap();
    assert!(verified.status.success() && verified.stderr.is_empty(), "{verified:?}");
}
