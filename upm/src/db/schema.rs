//! The database schema as numbered migrations, applied in order and tracked by
//! `PRAGMA user_version`. A shipped migration is never edited: a change is a new one.

pub const MIGRATIONS: &[&str] = &[
    // 1: packages, their files, the phases that ran, recorded root steps, and reports.
    r#"
    CREATE TABLE packages (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        version     TEXT NOT NULL,
        description TEXT,
        state       TEXT NOT NULL,
        stage       TEXT,
        uid         INTEGER NOT NULL,
        gid         INTEGER NOT NULL,
        recipe_path TEXT,
        recipe      TEXT,
        pid         INTEGER,
        started     INTEGER NOT NULL,
        finished    INTEGER,
        error       TEXT
    );
    CREATE TABLE files (
        package_id  INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
        path        BLOB NOT NULL,
        type        TEXT NOT NULL,
        mode        INTEGER NOT NULL,
        uid         INTEGER NOT NULL,
        gid         INTEGER NOT NULL,
        size        INTEGER NOT NULL,
        mtime       INTEGER NOT NULL,
        sha256      TEXT,
        target      BLOB,
        shared      INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (package_id, path)
    ) WITHOUT ROWID;
    CREATE INDEX files_by_path ON files(path);
    CREATE TABLE phases (
        package_id  INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
        seq         INTEGER NOT NULL,
        phase       TEXT NOT NULL,
        script      TEXT NOT NULL,
        user        TEXT NOT NULL,
        status      INTEGER,
        started     INTEGER NOT NULL,
        duration_ms INTEGER,
        PRIMARY KEY (package_id, seq)
    );
    CREATE TABLE root_steps (
        package_id  INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
        seq         INTEGER NOT NULL,
        step        TEXT NOT NULL,
        arg         TEXT NOT NULL,
        path        BLOB NOT NULL,
        applied     INTEGER NOT NULL,
        note        TEXT,
        PRIMARY KEY (package_id, seq)
    );
    CREATE TABLE reports (
        package_id  INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
        kind        TEXT NOT NULL,
        path        BLOB,
        detail      TEXT NOT NULL
    );
    "#,
    // 2: files an install took over from no package (temporary tools, a distribution's files):
    // their original owner and mode, and where the original is kept for restore. `held` while
    // the install runs, `replaced` once it replaced them.
    r#"
    CREATE TABLE replaced (
        package_id  INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
        path        BLOB NOT NULL,
        type        TEXT NOT NULL,
        uid         INTEGER NOT NULL,
        gid         INTEGER NOT NULL,
        mode        INTEGER NOT NULL,
        kept        BLOB,
        state       TEXT NOT NULL,
        PRIMARY KEY (package_id, path)
    ) WITHOUT ROWID;
    "#,
    // 3: what a profile records. `commands`: every command run for a package, in order — the
    // phases an install runs (origin `recipe`, the expanded script) and the command lines
    // `upm record` appends (origin `record`) — with its working directory (inside the root),
    // exit status (NULL while running) and duration. `profiles`: what the profile is written
    // from besides the database's other tables (the recipe as written, the archive used, the
    // environment, host facts, timings; JSON where structured), and the text last written.
    r#"
    CREATE TABLE commands (
        package_id  INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
        seq         INTEGER NOT NULL,
        phase       TEXT NOT NULL,
        origin      TEXT NOT NULL,
        user        TEXT NOT NULL,
        cwd         BLOB NOT NULL,
        command     TEXT NOT NULL,
        status      INTEGER,
        started     INTEGER NOT NULL,
        duration_ms INTEGER,
        PRIMARY KEY (package_id, seq)
    );
    CREATE TABLE profiles (
        package_id  INTEGER PRIMARY KEY REFERENCES packages(id) ON DELETE CASCADE,
        recipe      TEXT NOT NULL,
        source_file TEXT,
        source_sha256 TEXT,
        env         TEXT NOT NULL,
        host        TEXT NOT NULL,
        timings     TEXT NOT NULL,
        path        TEXT,
        text        TEXT
    );
    "#,
    // 4: per path of an install, which signals saw it (the watcher, the LD_PRELOAD shim;
    // shim NULL when it was off) and what ownership made of it: claimed (uid when tracked),
    // foreign (someone else's, reported), gone (removed by the install).
    r#"
    CREATE TABLE tracking (
        package_id  INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
        path        BLOB NOT NULL,
        inotify     INTEGER NOT NULL,
        shim        INTEGER,
        verdict     TEXT NOT NULL,
        uid         INTEGER,
        PRIMARY KEY (package_id, path)
    ) WITHOUT ROWID;
    "#,
    // 5: a profile's recipe hash: the sha256 of the recipe as written and of the source archive
    // used (`profile::recipe_hash`), what a binary host's index is searched by.
    r#"
    ALTER TABLE profiles ADD COLUMN recipe_hash TEXT;
    "#,
    // 6: the replay under way (`upm replay`): one row per package in build order with where it
    // stands, so `upm replay --continue` resumes after a failure, a reboot or a kill -9; and
    // the options it was started with.
    r#"
    CREATE TABLE replay_run (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        options     TEXT NOT NULL,
        started     INTEGER NOT NULL
    );
    CREATE TABLE replay_steps (
        seq             INTEGER PRIMARY KEY,
        name            TEXT NOT NULL,
        version         TEXT NOT NULL,
        recipe          BLOB NOT NULL,
        overrides       TEXT NOT NULL,
        state           TEXT NOT NULL,
        phase           TEXT,
        note            TEXT,
        seconds         REAL,
        phase_ms        INTEGER,
        build_bytes     INTEGER,
        installed_bytes INTEGER
    );
    "#,
    // 7: the dynamic section of each ELF file of a manifest, read at install time: the
    // soname it provides (`elf`, with its run path) and each soname it needs (`needed`), for
    // `upm depends`, `rdepends`, `check --libs` and the soname guard of remove and upgrade.
    r#"
    CREATE TABLE elf (
        package_id  INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
        path        BLOB NOT NULL,
        soname      TEXT,
        runpath     TEXT,
        PRIMARY KEY (package_id, path)
    ) WITHOUT ROWID;
    CREATE INDEX elf_by_soname ON elf(soname) WHERE soname IS NOT NULL;
    CREATE TABLE needed (
        package_id  INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
        path        BLOB NOT NULL,
        seq         INTEGER NOT NULL,
        soname      TEXT NOT NULL,
        PRIMARY KEY (package_id, path, seq)
    ) WITHOUT ROWID;
    CREATE INDEX needed_by_soname ON needed(soname);
    "#,
    // 8: upgrades. `upgrades`: the history of each package's upgrades (old and new version,
    // recipe hash and profile of each, when, how it ended), moved to the new row when an
    // upgrade commits. `upgrade_journal`: the upgrade under way (the installed row, the new
    // version's row, the directory holding the old version's files by hard link, and whether
    // its install phase has started), so a killed upgrade is put back to the old version.
    // `kept_libs`: library files of an old version kept by `--force` because other packages'
    // files still need their soname (`upm remove --stale-libs`).
    r#"
    CREATE TABLE upgrades (
        id              INTEGER PRIMARY KEY,
        package_id      INTEGER REFERENCES packages(id) ON DELETE CASCADE,
        name            TEXT NOT NULL,
        old_version     TEXT NOT NULL,
        new_version     TEXT NOT NULL,
        old_recipe_hash TEXT,
        new_recipe_hash TEXT,
        old_profile     TEXT,
        new_profile     TEXT,
        old_profile_text TEXT,
        state           TEXT NOT NULL,
        detail          TEXT,
        started         INTEGER NOT NULL,
        finished        INTEGER
    );
    CREATE TABLE upgrade_journal (
        name        TEXT PRIMARY KEY,
        old_id      INTEGER NOT NULL,
        new_id      INTEGER NOT NULL,
        keep_dir    BLOB NOT NULL,
        state       TEXT NOT NULL,
        started     INTEGER NOT NULL
    );
    CREATE TABLE kept_libs (
        package_id  INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
        path        BLOB NOT NULL,
        soname      TEXT,
        needed_by   TEXT NOT NULL,
        PRIMARY KEY (package_id, path)
    ) WITHOUT ROWID;
    "#,
];
