#!/bin/sh
# The entry point of the git-servers test image (built by scripts/docker-base-images.sh): serves
# bare repositories over ssh and over https, as a company's git host would, for
# `make chart-docker-run`. Runs as root; the repositories named as arguments are created empty.
#
#   ssh://git@HOST/srv/git/ssh/REPO     key authentication (/config/authorized_keys)
#   https://HOST/git/REPO               basic authentication (/config/users, `user:password`)
#
# /config also holds ssh_host_key (an ed25519 private key), tls.crt and tls.key.
set -eu

install -d /etc/git-servers /run/sshd /srv/git/ssh /srv/git/https
# A password of `*` (no password login) rather than a locked account, which sshd refuses.
id git >/dev/null 2>&1 || useradd --create-home --shell /bin/sh --password "*" git
install -m 0600 /config/ssh_host_key /etc/git-servers/ssh_host_key
install -m 0644 /config/authorized_keys /etc/git-servers/authorized_keys
install -m 0600 /config/tls.crt /config/tls.key /etc/git-servers/
install -m 0640 -g www-data /config/users /etc/git-servers/users
for repo in "$@"; do
    git init -q --bare --initial-branch=main "/srv/git/ssh/$repo"
    git init -q --bare --initial-branch=main "/srv/git/https/$repo"
done
chown -R git:git /srv/git/ssh
chown -R www-data:www-data /srv/git/https

cat >/etc/git-servers/sshd_config <<'CONF'
Port 22
HostKey /etc/git-servers/ssh_host_key
AuthorizedKeysFile /etc/git-servers/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers git
CONF

cat >/etc/git-servers/lighttpd.conf <<'CONF'
server.modules = ("mod_openssl", "mod_alias", "mod_auth", "mod_authn_file", "mod_cgi", "mod_setenv")
server.port = 443
server.username = "www-data"
server.groupname = "www-data"
server.document-root = "/srv/git/https"
ssl.engine = "enable"
ssl.pemfile = "/etc/git-servers/tls.crt"
ssl.privkey = "/etc/git-servers/tls.key"
alias.url = ("/git" => "/usr/lib/git-core/git-http-backend")
$HTTP["url"] =~ "^/git" {
    cgi.assign = ("" => "")
    setenv.set-environment = ("GIT_PROJECT_ROOT" => "/srv/git/https", "GIT_HTTP_EXPORT_ALL" => "1")
}
auth.backend = "plain"
auth.backend.plain.userfile = "/etc/git-servers/users"
auth.require = ("/git" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
CONF

lighttpd -tt -f /etc/git-servers/lighttpd.conf
lighttpd -D -f /etc/git-servers/lighttpd.conf &
exec /usr/sbin/sshd -D -e -f /etc/git-servers/sshd_config
