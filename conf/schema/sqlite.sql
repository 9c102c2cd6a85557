-- SPDX-License-Identifier: Apache-2.0
-- Copyright 2026 The mod_gettoken Authors
-- mod_gettoken schema for SQLite (DBDriver sqlite3).  Applying it twice is
-- harmless.  sqlite3 /var/lib/mdm/enrollments.db < conf/schema/sqlite.sql

-- Which identity certificate belongs to which enrollment: id is the
-- device-channel enrollment id (UDID, or EnrollmentID for user
-- enrollments), sha256 the lowercase hex SHA-256 of the certificate (DER).
-- The same table as nanomdm's, for sites that do not run nanomdm; the
-- MDM writes a row when a device enrolls (Authenticate/TokenUpdate).
CREATE TABLE IF NOT EXISTS cert_auth_associations (
    id         TEXT NOT NULL,
    sha256     TEXT NOT NULL CHECK (length(sha256) = 64),
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id, sha256)
);

-- com.apple.watch.pairing tokens already accepted (single use): the
-- primary key makes the second INSERT of a jti fail, atomically, on every
-- node sharing the database.  Rows past expires_at (unix seconds) are
-- purged by the module.  The httpd user needs write access to this table
-- (and, for SQLite, to the database file and its directory).
CREATE TABLE IF NOT EXISTS gettoken_pairing_jti (
    jti        TEXT    NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS gettoken_pairing_jti_expires
    ON gettoken_pairing_jti (expires_at);

-- Optional: which organisation (GetTokenOrganization name) each enrollment
-- belongs to, for a GetTokenOrganizationSQL such as
--   SELECT organization FROM gettoken_device_organization WHERE enrollment_id = %s
-- The operator fills it from the Apple Business/School Manager device
-- assignments (the serial numbers each MDM server holds, e.g. nanodep's
-- per-name device sync) and the MDM's serial -> UDID mapping.  No row: the
-- vhost's default organisation signs.  The httpd user only reads it.
CREATE TABLE IF NOT EXISTS gettoken_device_organization (
    enrollment_id TEXT NOT NULL PRIMARY KEY,
    organization  TEXT NOT NULL
);

-- One row per answered GetToken, written by GetTokenAuditSQL (optional):
--   GetTokenAuditSQL "INSERT INTO gettoken_audit (enrollment_id, organization, service_type, jti, status, identity_sha256) VALUES (%s, %s, %s, %s, %d, %s)"
-- jti and identity_sha256 are '' when there is none (a refusal); status is
-- the HTTP status of the answer.  The httpd user needs INSERT on it.
CREATE TABLE IF NOT EXISTS gettoken_audit (
    answered_at     TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    enrollment_id   TEXT    NOT NULL,
    organization    TEXT    NOT NULL,
    service_type    TEXT    NOT NULL,
    jti             TEXT    NOT NULL,
    status          INTEGER NOT NULL,
    identity_sha256 TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS gettoken_audit_enrollment
    ON gettoken_audit (enrollment_id);

-- Security tokens handed to Apple Watches by the watch enrollment gate
-- (GetTokenWatchEnrollment): the watch's pairing token carries sth, the
-- base64url SHA-256 of one of them.  One UPDATE ... WHERE used = 0 uses a
-- token up, atomically for every node sharing the database.  Rows past
-- expires_at (unix seconds) are purged by the module.  The httpd user
-- needs write access to this table.
CREATE TABLE IF NOT EXISTS gettoken_watch_security_token (
    security_token TEXT    NOT NULL PRIMARY KEY,
    sth            TEXT    NOT NULL UNIQUE,
    watch_udid     TEXT    NOT NULL,
    expires_at     INTEGER NOT NULL,
    used           INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS gettoken_watch_security_token_expires
    ON gettoken_watch_security_token (expires_at);
