"""Grow the benchmark database from 10k to 100k and 1M records by replicating, in SQL, the patients that
bench/generate.py loaded through the API (ids remapped; every table the API writes grows: the records, their
ACL entries, versions, audit rows, and the FHIR view: fhir_resource, fhir_history, fhir_index).

Ids: 10 characters of base64 of md5(old id, copy number), ~60 bits (10 hex digits collided at 1M).

Why SQL: the API path writes ~60-300 records/s on this 2-core machine (see docs/PERFORMANCE.md), so 1M
records through HTTP would take hours; the in-process service path is the same code minus HTTP and not
much faster. The copies are what the API wrote, with new ids, so table and index sizes are what 1M
API-loaded records give. The probe users and patients the drivers use are the originals.

    .venv/bin/python bench/scale.py --source-tag n10k --copies 9      # 10k -> ~100k records
    .venv/bin/python bench/scale.py --source-tag n10k --copies 90 --first 10   # -> ~1M records
"""
from __future__ import annotations

import argparse
import os
import time

import psycopg

URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/phr_bench")

CLASS = {"allergy": "Allergy", "vaccination": "Vaccination", "medication": "Medication", "lab_result": "LabResult",
         "medical_document": "MedicalDocument", "emergency_contact": "EmergencyContact"}
RECORD_TABLES = ["profile", "allergy", "vaccination", "medication", "lab_result", "medical_document",
                 "emergency_contact"]

SETUP = """
CREATE OR REPLACE FUNCTION bench_nid(old text, k int) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN old IS NULL THEN NULL ELSE
        left(translate(encode(decode(md5(old || ':' || k), 'hex'), 'base64'), '+/=', 'xyz'), 10) END $$;
CREATE OR REPLACE FUNCTION bench_fid(old text, pid text, k int) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN length(old) = 10 THEN bench_nid(old, k)
                WHEN pid IS NOT NULL THEN replace(old, pid, bench_nid(pid, k)) ELSE old || '-' || k END $$;
DROP TABLE IF EXISTS bench_src_users, bench_src_profiles, bench_src_ids;
CREATE TABLE bench_src_users AS SELECT object_id FROM user_account WHERE username ~ %(pattern)s;
CREATE TABLE bench_src_profiles AS SELECT object_id FROM profile WHERE user_id IN (SELECT object_id FROM bench_src_users);
CREATE TABLE bench_src_ids AS
    SELECT '_User'::varchar AS class_name, object_id FROM bench_src_users
    UNION ALL SELECT 'Profile', object_id FROM bench_src_profiles
    {records}
    UNION ALL SELECT 'AuditLog', object_id FROM audit_log WHERE profile_id IN (SELECT object_id FROM bench_src_profiles);
CREATE INDEX ON bench_src_ids (class_name, object_id);
ANALYZE bench_src_users;
ANALYZE bench_src_profiles;
ANALYZE bench_src_ids;
"""


def record_columns(cur, table: str) -> list[str]:
    cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                (table,))
    return [r[0] for r in cur.fetchall()]


def mapped(col: str, table: str) -> str:
    """The SQL expression for a column of a copy (k is the copy number)."""
    ids = {"object_id", "profile_id", "user_id", "written_by", "actor_id", "created_by_id", "document_id",
           "attachment_id", "proof_document_id"}
    if col in ids:
        return f"bench_nid(t.{col}, k)"
    if col == "entity_id":
        return "bench_nid(t.entity_id, k)"
    if col == "acl":
        return ("(SELECT coalesce(jsonb_object_agg(CASE WHEN key = '*' OR key LIKE 'role:%%' THEN key "
                "ELSE bench_nid(key, k) END, value), '{}'::jsonb) FROM jsonb_each(t.acl))")
    if col == "username":
        return "t.username || '_c' || k"
    if col == "email":
        return "NULL"
    if col == "file_name":
        return "'c' || k || '_' || t.file_name"
    if col == "summary":
        return "t.summary"
    return f"t.{col}"


def copy_table(cur, table: str, where: str, first: int, last: int) -> int:
    cols = record_columns(cur, table)
    sel = ", ".join(mapped(c, table) for c in cols)
    cur.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {sel} FROM {table} t "
                f"CROSS JOIN generate_series(%(a)s::int, %(b)s::int) k WHERE {where}", {"a": first, "b": last})
    return cur.rowcount


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source-tag", required=True, help="the --tag given to generate.py --via native")
    ap.add_argument("--copies", type=int, required=True)
    ap.add_argument("--first", type=int, default=1, help="number of the first copy (continue a previous run)")
    ap.add_argument("--batch", type=int, default=5, help="copies per transaction")
    args = ap.parse_args()
    with psycopg.connect(URL.replace("postgresql+psycopg", "postgresql"), autocommit=False) as conn:
        cur = conn.cursor()
        records = "".join(f" UNION ALL SELECT '{CLASS[t]}', object_id FROM {t} "
                          "WHERE profile_id IN (SELECT object_id FROM bench_src_profiles)"
                          for t in RECORD_TABLES if t != "profile")
        for stmt in SETUP.format(records=records).split(";\n"):
            if stmt.strip():
                cur.execute(stmt, {"pattern": f"^u{args.source_tag}[0-9]+$"} if "%(pattern)s" in stmt else None)
        cur.execute("SELECT count(*) FROM bench_src_users")
        print(f"source: {cur.fetchone()[0]} users", flush=True)
        conn.commit()
        t0 = time.perf_counter()
        k = args.first
        end = args.first + args.copies - 1
        while k <= end:
            last = min(end, k + args.batch - 1)
            cur.execute("SET LOCAL synchronous_commit = off")
            n = copy_table(cur, "user_account", "t.object_id IN (SELECT object_id FROM bench_src_users)", k, last)
            cur.execute("""INSERT INTO user_session (token_hash, user_id, expires_at, installation_id, created_with,
                               restricted, object_id, created_at, updated_at, version, deleted_at, acl, fhir, written_by)
                           SELECT encode(sha256((t.token_hash || k)::bytea), 'hex'), bench_nid(t.user_id, k), t.expires_at,
                                  NULL, t.created_with, t.restricted, bench_nid(t.object_id, k), t.created_at, t.updated_at,
                                  t.version, t.deleted_at, '{}'::jsonb, t.fhir, t.written_by
                           FROM user_session t CROSS JOIN generate_series(%(a)s::int, %(b)s::int) k
                           WHERE t.user_id IN (SELECT object_id FROM bench_src_users)""", {"a": k, "b": last})
            cur.execute("""INSERT INTO stored_file (name, original_name, content_type, size, sha1_b64, sha256_hex,
                               created_by_id, document_id, created_at, deleted_at)
                           SELECT 'c' || k || '_' || t.name, t.original_name, t.content_type, t.size, t.sha1_b64,
                                  t.sha256_hex, bench_nid(t.created_by_id, k), bench_nid(t.document_id, k), t.created_at,
                                  t.deleted_at
                           FROM stored_file t CROSS JOIN generate_series(%(a)s::int, %(b)s::int) k
                           WHERE t.created_by_id IN (SELECT object_id FROM bench_src_users)""", {"a": k, "b": last})
            cur.execute("""INSERT INTO file_blob (name, data) SELECT 'c' || k || '_' || t.name, t.data
                           FROM file_blob t JOIN stored_file s ON s.name = t.name CROSS JOIN generate_series(%(a)s::int, %(b)s::int) k
                           WHERE s.created_by_id IN (SELECT object_id FROM bench_src_users)""", {"a": k, "b": last})
            n += copy_table(cur, "profile", "t.object_id IN (SELECT object_id FROM bench_src_profiles)", k, last)
            for table in RECORD_TABLES[1:]:
                n += copy_table(cur, table, "t.profile_id IN (SELECT object_id FROM bench_src_profiles)", k, last)
            n += copy_table(cur, "audit_log", "t.profile_id IN (SELECT object_id FROM bench_src_profiles)", k, last)
            cur.execute("""INSERT INTO acl_entry (class_name, object_id, principal, can_read, can_write)
                           SELECT t.class_name, bench_nid(t.object_id, k),
                                  CASE WHEN t.principal = '*' OR t.principal LIKE 'role:%%' THEN t.principal
                                       ELSE bench_nid(t.principal, k) END, t.can_read, t.can_write
                           FROM acl_entry t JOIN bench_src_ids s ON s.class_name = t.class_name AND s.object_id = t.object_id
                           CROSS JOIN generate_series(%(a)s::int, %(b)s::int) k""", {"a": k, "b": last})
            cur.execute("""INSERT INTO record_version (class_name, object_id, version, recorded_at, deleted, data)
                           SELECT t.class_name, bench_nid(t.object_id, k), t.version, t.recorded_at, t.deleted, t.data
                           FROM record_version t JOIN bench_src_ids s ON s.class_name = t.class_name AND s.object_id = t.object_id
                           CROSS JOIN generate_series(%(a)s::int, %(b)s::int) k""", {"a": k, "b": last})
            fsrc = "t.profile_id IN (SELECT object_id FROM bench_src_profiles)"
            body = ("replace(replace(t.body, '\"id\":\"' || t.id || '\"', '\"id\":\"' || bench_fid(t.id, t.profile_id, k) || '\"'), "
                    "'Patient/' || t.profile_id, 'Patient/' || bench_nid(t.profile_id, k))")
            cur.execute(f"""INSERT INTO fhir_resource (resource_type, id, class_name, source_id, profile_id, category,
                               version_id, last_updated, deleted, body)
                            SELECT t.resource_type, bench_fid(t.id, t.profile_id, k), t.class_name, bench_nid(t.source_id, k),
                                   bench_nid(t.profile_id, k), t.category, t.version_id, t.last_updated, t.deleted, {body}
                            FROM fhir_resource t CROSS JOIN generate_series(%(a)s::int, %(b)s::int) k WHERE {fsrc}""",
                        {"a": k, "b": last})
            n += cur.rowcount
            cur.execute(f"""INSERT INTO fhir_history (resource_type, id, version_id, last_updated, deleted, method, body)
                            SELECT h.resource_type, bench_fid(h.id, t.profile_id, k), h.version_id, h.last_updated,
                                   h.deleted, h.method, replace(h.body, 'Patient/' || t.profile_id,
                                                                'Patient/' || bench_nid(t.profile_id, k))
                            FROM fhir_history h JOIN fhir_resource t ON t.resource_type = h.resource_type AND t.id = h.id
                            CROSS JOIN generate_series(%(a)s::int, %(b)s::int) k WHERE {fsrc}""", {"a": k, "b": last})
            cur.execute(f"""INSERT INTO fhir_index (resource_type, resource_id, param, system, value, norm, low, high,
                               number, target_type, target_id)
                            SELECT i.resource_type, bench_fid(i.resource_id, t.profile_id, k), i.param, i.system,
                                   CASE WHEN i.param = '_id' THEN bench_fid(i.value, t.profile_id, k) ELSE i.value END,
                                   CASE WHEN i.param = '_id' THEN bench_fid(i.norm, t.profile_id, k) ELSE i.norm END,
                                   i.low, i.high, i.number, i.target_type,
                                   CASE WHEN i.target_type = 'Patient' THEN bench_nid(i.target_id, k) ELSE i.target_id END
                            FROM fhir_index i JOIN fhir_resource t ON t.resource_type = i.resource_type AND t.id = i.resource_id
                            CROSS JOIN generate_series(%(a)s::int, %(b)s::int) k WHERE {fsrc}""", {"a": k, "b": last})
            conn.commit()
            el = time.perf_counter() - t0
            print(f"copies {k}..{last}: {n} record/resource rows, {el:.0f}s", flush=True)
            k = last + 1
        cur.execute("ANALYZE")
        conn.commit()
        cur.execute("""SELECT (SELECT count(*) FROM profile) + (SELECT count(*) FROM allergy) + (SELECT count(*) FROM vaccination)
                            + (SELECT count(*) FROM medication) + (SELECT count(*) FROM lab_result)
                            + (SELECT count(*) FROM medical_document) + (SELECT count(*) FROM emergency_contact),
                              (SELECT count(*) FROM fhir_resource), (SELECT count(*) FROM fhir_index),
                              (SELECT count(*) FROM audit_log)""")
        recs, fr, fi, al = cur.fetchone()
        print(f"now: {recs} PHR records, {fr} FHIR resources, {fi} index rows, {al} audit rows "
              f"({time.perf_counter() - t0:.0f}s)")


if __name__ == "__main__":
    main()
