-- mod_gettoken schema for PostgreSQL (DBDriver pgsql).  Applying it twice
-- is harmless.  psql -d mdm -f conf/schema/postgresql.sql
--
-- MySQL/MariaDB (DBDriver mysql) takes the same tables with VARCHAR keys:
--   CREATE TABLE IF NOT EXISTS cert_auth_associations (
--       id VARCHAR(255) NOT NULL, sha256 CHAR(64) NOT NULL,
--       created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
--       updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
--       PRIMARY KEY (id, sha256));
--   CREATE TABLE IF NOT EXISTS gettoken_pairing_jti (
--       jti CHAR(36) NOT NULL PRIMARY KEY, expires_at BIGINT NOT NULL,
--       INDEX gettoken_pairing_jti_expires (expires_at));

-- Which identity certificate belongs to which enrollment (nanomdm's table:
-- a nanomdm database already has it and needs nothing from this file).
CREATE TABLE IF NOT EXISTS cert_auth_associations (
    id         VARCHAR(255) NOT NULL,
    sha256     CHAR(64)     NOT NULL,
    created_at TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id, sha256),
    CHECK (sha256 != '')
);

-- com.apple.watch.pairing tokens already accepted (single use across every
-- node sharing this database).  Rows past expires_at (unix seconds) are
-- purged by the module.
CREATE TABLE IF NOT EXISTS gettoken_pairing_jti (
    jti        VARCHAR(64) NOT NULL PRIMARY KEY,
    expires_at BIGINT      NOT NULL
);
CREATE INDEX IF NOT EXISTS gettoken_pairing_jti_expires
    ON gettoken_pairing_jti (expires_at);

-- The httpd user reads enrollments and writes only the jti table, e.g.:
--   GRANT SELECT ON cert_auth_associations TO mdm_httpd;
--   GRANT SELECT, INSERT, DELETE ON gettoken_pairing_jti TO mdm_httpd;
