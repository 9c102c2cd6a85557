-- SPDX-License-Identifier: Apache-2.0
-- Copyright 2026 The mod_gettoken Authors
-- mod_gettoken schema for PostgreSQL (DBDriver pgsql).  Applying it twice
-- is harmless.  psql -d mdm -f conf/schema/postgresql.sql
--
-- httpd side (mod_dbd), e.g.:
--   DBDriver pgsql
--   DBDParams "host=db.example port=5432 dbname=nanomdm user=mdm_httpd connect_timeout=3 options='-c statement_timeout=3000'"
-- connect_timeout bounds a connection attempt to a database that does not
-- answer, statement_timeout a query stuck behind a lock: either ends as a
-- 503 with Retry-After instead of a request that waits.  DBDMax bounds the
-- connections per httpd process; a request waits for one while all are in
-- use.  Connections the server drops (restart, pg_terminate_backend) are
-- re-opened on their next use.  The default GetTokenEnrollmentSQL reads
-- nanomdm's cert_auth_associations table unchanged.
--
-- MySQL/MariaDB: conf/schema/mysql.sql.

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

-- Optional: which organisation (GetTokenOrganization name) each enrollment
-- belongs to, for a GetTokenOrganizationSQL such as
--   SELECT organization FROM gettoken_device_organization WHERE enrollment_id = %s
-- filled by the operator from the Apple Business/School Manager device
-- assignments (e.g. nanodep's per-name device sync) and the MDM's serial ->
-- UDID mapping.  No row: the vhost's default organisation signs.
CREATE TABLE IF NOT EXISTS gettoken_device_organization (
    enrollment_id VARCHAR(255) NOT NULL PRIMARY KEY,
    organization  VARCHAR(128) NOT NULL
);

-- One row per answered GetToken, written by GetTokenAuditSQL (optional):
--   GetTokenAuditSQL "INSERT INTO gettoken_audit (enrollment_id, organization, service_type, jti, status, identity_sha256) VALUES (%s, %s, %s, %s, %d, %s)"
-- jti and identity_sha256 are '' when there is none (a refusal); status is
-- the HTTP status of the answer (%d: mod_dbd declares it an integer).
CREATE TABLE IF NOT EXISTS gettoken_audit (
    answered_at     TIMESTAMPTZ  NOT NULL DEFAULT CURRENT_TIMESTAMP,
    enrollment_id   VARCHAR(1024) NOT NULL,
    organization    VARCHAR(1024) NOT NULL,
    service_type    VARCHAR(1024) NOT NULL,
    jti             VARCHAR(64)  NOT NULL,
    status          INTEGER      NOT NULL,
    identity_sha256 VARCHAR(64)  NOT NULL
);
CREATE INDEX IF NOT EXISTS gettoken_audit_enrollment
    ON gettoken_audit (enrollment_id);

-- The httpd user reads enrollments and writes only the jti table, e.g.:

-- Security tokens handed to Apple Watches by the watch enrollment gate
-- (GetTokenWatchEnrollment).  A pairing token carries sth, the base64url
-- SHA-256 of one; a single UPDATE ... WHERE used = 0 uses it up, so that
-- two nodes sharing this database admit it once.  Rows past expires_at
-- (unix seconds) are purged by the module.
CREATE TABLE IF NOT EXISTS gettoken_watch_security_token (
    security_token VARCHAR(64)  NOT NULL PRIMARY KEY,
    sth            VARCHAR(64)  NOT NULL UNIQUE,
    watch_udid     VARCHAR(128) NOT NULL,
    expires_at     BIGINT       NOT NULL,
    used           SMALLINT     NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS gettoken_watch_security_token_expires
    ON gettoken_watch_security_token (expires_at);

-- The httpd user reads enrollments and writes only the jti and security
-- token tables, e.g.:
--   GRANT SELECT ON cert_auth_associations TO mdm_httpd;
--   GRANT SELECT ON gettoken_device_organization TO mdm_httpd;
--   GRANT SELECT, INSERT, DELETE ON gettoken_pairing_jti TO mdm_httpd;
--   GRANT INSERT ON gettoken_audit TO mdm_httpd;   -- with GetTokenAuditSQL

--   GRANT SELECT, INSERT, UPDATE, DELETE ON gettoken_watch_security_token TO mdm_httpd;
