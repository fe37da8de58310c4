//! nginx serving the same files from disk: the reference for reads and downloads.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ktra_testing::process::{Service, free_port};

/// An nginx with one HTTP/1.1 port and one h2c port over the same directory.
pub(crate) struct Nginx {
    service: Service,
    /// The HTTP/1.1 address.
    pub(crate) http1: SocketAddr,
    /// The h2c (prior knowledge) address.
    pub(crate) h2c: SocketAddr,
    /// The directory served at `/`.
    pub(crate) root: PathBuf,
}

impl Nginx {
    /// Starts nginx serving `dir/www`.
    pub(crate) fn start(dir: &Path) -> anyhow::Result<Self> {
        let root = dir.join("www");
        std::fs::create_dir_all(&root)?;
        let (http1_port, h2c_port) = (free_port(), free_port());
        let config = format!(
            r#"daemon off;
user root;
worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;

    tcp_nodelay on;
    keepalive_requests 10000000;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    default_type application/octet-stream;
    server {{ listen 127.0.0.1:{http1_port}; root {root}; }}
    server {{ listen 127.0.0.1:{h2c_port} http2; root {root}; sendfile off; postpone_output 0; }}
}}
"#,
            dir = dir.display(),
            root = root.display(),
        );
        let config_path = dir.join("nginx.conf");
        std::fs::write(&config_path, config)?;
        let service = Service::new(
            "nginx",
            "/usr/sbin/nginx",
            &[
                "-c",
                &config_path.display().to_string(),
                "-e",
                &dir.join("nginx-error.log").display().to_string(),
            ],
            Vec::new(),
            dir,
            http1_port,
        );
        service.start();
        Ok(Self {
            service,
            http1: SocketAddr::from(([127, 0, 0, 1], http1_port)),
            h2c: SocketAddr::from(([127, 0, 0, 1], h2c_port)),
            root,
        })
    }

    /// Writes a file to serve at `path` (relative, no leading slash).
    pub(crate) fn put(&self, path: &str, content: &[u8]) -> anyhow::Result<()> {
        let target = self.root.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(target, content)?;
        Ok(())
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers (SIGKILL would leave them running).
        self.service.terminate();
    }
}
