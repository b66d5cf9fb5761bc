-- Conversation state for follow-up questions (src/orchestrator/conversation.rs),
-- shared by every instance: per user and conversation, the last metric plan and
-- the last few questions with the SQL that ran for them — never answers or rows.
-- Forgotten after a week without use, and when an administrator revokes the user.
CREATE TABLE conversations (
    user_id         TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    state           TEXT NOT NULL,      -- JSON {"metric": plan or null, "turns": [...]}
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);
CREATE INDEX conversations_updated ON conversations (updated_at);
