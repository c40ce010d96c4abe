-- Every report belongs to an employer the registry holds. The foreign key checked that with a
-- query of its own for each stored report, run at the end of the statement: in a bulk batch,
-- two thousand queries per chunk, a fifth of the batch's time in the database. The triggers below
-- keep the rule for any other writer, a hand edit included, with one query per statement over
-- the rows it stored, and check the employer's side only on the rare statements that delete an
-- employer or change its id.
--
-- The service's report writer skips the check: it stores a report only for an employer row it
-- has read and locked (FOR UPDATE) in the same transaction, and takes the report's employer_id
-- from that row. It says so with `SET LOCAL sinergi.reports_of_locked_employers = on`, for its
-- transaction only. Looking each employer up again cost even the one-query check a sixth of a
-- million-report batch's time, random reads of the primary key for ids the batch had just read.
--
-- What the key also did and these do not: lock the employer (FOR KEY SHARE) while a report is
-- added, so that no concurrent transaction removes it before the commit. The service locks the
-- employer of every report it stores and never deletes employers; a concurrent deletion waits
-- for that lock and then finds the new reports.
ALTER TABLE reports DROP CONSTRAINT reports_employer_id_fkey;

CREATE FUNCTION reports_have_employers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('sinergi.reports_of_locked_employers', true) IS DISTINCT FROM 'on'
        AND EXISTS (
            SELECT FROM stored
            WHERE NOT EXISTS (SELECT FROM employers WHERE employers.id = stored.employer_id)
        )
    THEN
        RAISE EXCEPTION 'a report names an employer the registry does not hold'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'reports';
    END IF;
    RETURN NULL;
END
$$;

-- A trigger with a transition table may name only one event.
CREATE TRIGGER reports_inserted_have_employers AFTER INSERT ON reports
    REFERENCING NEW TABLE AS stored
    FOR EACH STATEMENT EXECUTE FUNCTION reports_have_employers();
CREATE TRIGGER reports_updated_have_employers AFTER UPDATE ON reports
    REFERENCING NEW TABLE AS stored
    FOR EACH STATEMENT EXECUTE FUNCTION reports_have_employers();

-- Row triggers run at the end of the statement, like the key's check: an id that a statement
-- takes from one employer and gives to another is still there when it is looked for.
CREATE FUNCTION employer_gone_keeps_no_reports() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM employers WHERE id = OLD.id)
        AND EXISTS (SELECT FROM reports WHERE employer_id = OLD.id)
    THEN
        RAISE EXCEPTION 'employer % still has reports', OLD.id
            USING ERRCODE = 'foreign_key_violation', TABLE = 'employers';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER employer_deleted_keeps_no_reports AFTER DELETE ON employers
    FOR EACH ROW EXECUTE FUNCTION employer_gone_keeps_no_reports();
CREATE TRIGGER employer_renumbered_keeps_no_reports AFTER UPDATE OF id ON employers
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION employer_gone_keeps_no_reports();
