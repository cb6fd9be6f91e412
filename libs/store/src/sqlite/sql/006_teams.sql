-- 6: teams and their members. Which rooms belong to a team is the rooms' own `teamId` (in the
-- room document), indexed here for `rooms_of_team`.
CREATE TABLE teams (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    doc TEXT NOT NULL
);
CREATE TABLE team_members (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members(user_id);
CREATE INDEX rooms_team ON rooms(json_extract(doc, '$.teamId')) WHERE json_extract(doc, '$.teamId') IS NOT NULL;
