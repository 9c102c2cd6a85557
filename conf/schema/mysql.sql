-- SPDX-License-Identifier: Apache-2.0
-- Copyright 2026 The mod_gettoken Authors
-- mod_gettoken schema for MariaDB (tested: 10.11) and MySQL 8 (DBDriver mysql, Debian
-- package libaprutil1-dbd-mysql).  Applying it twice is harmless.
--   mariadb mdm < conf/schema/mysql.sql      (or: mysql mdm < ...)
--
-- httpd side (mod_dbd), e.g.:
--   DBDriver mysql
--   DBDParams "host=db.example port=3306 user=gettoken pass=... dbname=nanomdm group=gettoken"
-- apr-util's mysql driver takes no timeouts in DBDParams; group=gettoken has
-- the client library read the [gettoken] section of /etc/my.cnf, e.g.
--   [gettoken]
--   connect-timeout=3
--   init-command=SET SESSION max_statement_time=3
-- (MariaDB; MySQL 8: SET SESSION lock_wait_timeout=3, innodb_lock_wait_timeout=3):
-- a database that does not answer, or a statement stuck behind a lock, then
-- ends as a 503 with Retry-After instead of a request that waits.  DBDMax
-- bounds the connections per httpd process.  Connections the server dropped
-- (restart, KILL, wait_timeout) are re-opened on their next use (the driver
-- reconnects and the module prepares its statements again).
--
-- The default GetTokenEnrollmentSQL reads nanomdm's MySQL table
-- cert_auth_associations unchanged (nanomdm's MySQL tables have no prefix;
-- Fleet keeps the same tables with the prefix nano_: point
-- GetTokenEnrollmentSQL at nano_cert_auth_associations there).
--
-- The module's own tables compare their keys byte for byte (utf8mb4_bin),
-- as PostgreSQL and SQLite do: a pairing jti or a security token's hash
-- that differs in case is another one.  InnoDB: a single-use INSERT or
-- UPDATE is decided by one row lock, so nodes sharing the database admit a
-- token once between them.

-- Which identity certificate belongs to which enrollment (nanomdm's table,
-- as nanomdm's MySQL schema defines it: a nanomdm database already has it
-- and needs nothing from this file).
CREATE TABLE IF NOT EXISTS cert_auth_associations (
    id         VARCHAR(255) NOT NULL,
    sha256     CHAR(64)     NOT NULL,
    created_at TIMESTAMP    DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP    DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (id, sha256),
    CHECK (id != ''),
    CHECK (sha256 != ''),
    INDEX idx_sha256 (sha256)
) ENGINE=InnoDB;

-- com.apple.watch.pairing tokens already accepted (single use across every
-- node sharing this database: the primary key refuses a second INSERT).
-- Rows past expires_at (unix seconds) are purged by the module.
CREATE TABLE IF NOT EXISTS gettoken_pairing_jti (
    jti        VARCHAR(64) NOT NULL PRIMARY KEY,
    expires_at BIGINT      NOT NULL,
    INDEX gettoken_pairing_jti_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Optional: which organisation (GetTokenOrganization name) each enrollment
-- belongs to, for a GetTokenOrganizationSQL such as
--   SELECT organization FROM gettoken_device_organization WHERE enrollment_id = %s
-- filled by the operator from the Apple Business/School Manager device
-- assignments and the MDM's serial -> UDID mapping.  No row: the vhost's
-- default organisation signs.
CREATE TABLE IF NOT EXISTS gettoken_device_organization (
    enrollment_id VARCHAR(255) NOT NULL PRIMARY KEY,
    organization  VARCHAR(128) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per answered GetToken, written by GetTokenAuditSQL (optional):
--   GetTokenAuditSQL "INSERT INTO gettoken_audit (enrollment_id, organization, service_type, jti, status, identity_sha256) VALUES (%s, %s, %s, %s, %d, %s)"
-- jti and identity_sha256 are '' when there is none (a refusal); status is
-- the HTTP status of the answer.  id only gives InnoDB (and replication)
-- a primary key.
CREATE TABLE IF NOT EXISTS gettoken_audit (
    id              BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    answered_at     TIMESTAMP(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    enrollment_id   VARCHAR(1024) NOT NULL,
    organization    VARCHAR(1024) NOT NULL,
    service_type    VARCHAR(1024) NOT NULL,
    jti             VARCHAR(64)   NOT NULL,
    status          INTEGER       NOT NULL,
    identity_sha256 VARCHAR(64)   NOT NULL,
    INDEX gettoken_audit_enrollment (enrollment_id(255))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

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
    used           SMALLINT     NOT NULL DEFAULT 0,
    INDEX gettoken_watch_security_token_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- MySQL checks privileges when a statement is prepared, and mod_dbd
-- prepares the module's statements on every connection it opens: a
-- statement the httpd user may not run (a missing GRANT below) fails every
-- pooled connection, so every GetToken of the vhost is a 503 (start-up
-- warns: "no database connection at start-up").  Only GetTokenAuditSQL is
-- prepared apart: without its GRANT, audit rows are missing, answers stand.
-- The httpd user reads enrollments and writes only the module's tables
-- (for nanomdm add: GRANT SELECT ON nanomdm.enrollments TO ...; for Fleet,
-- SELECT on nano_cert_auth_associations and nano_enrollments), e.g.:
--   CREATE USER 'gettoken'@'10.0.0.%' IDENTIFIED BY '...';
--   GRANT SELECT ON mdm.cert_auth_associations TO 'gettoken'@'10.0.0.%';
--   GRANT SELECT ON mdm.gettoken_device_organization TO 'gettoken'@'10.0.0.%';
--   GRANT SELECT, INSERT, DELETE ON mdm.gettoken_pairing_jti TO 'gettoken'@'10.0.0.%';
--   GRANT SELECT, INSERT, UPDATE, DELETE ON mdm.gettoken_watch_security_token TO 'gettoken'@'10.0.0.%';
--   GRANT INSERT ON mdm.gettoken_audit TO 'gettoken'@'10.0.0.%';   -- with GetTokenAuditSQL
