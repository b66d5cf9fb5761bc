//! Chat messages in the OpenAI shape (async-openai types), built from plain
//! text, for the orchestrator's transcripts.

use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestToolMessage,
    ChatCompletionRequestUserMessage, FunctionCall,
};

use super::ToolCall;

/// A model reply echoed back into the transcript: its text, or its tool call.
pub enum Echo {
    /// Text content (a JSON plan step).
    Text(String),
    /// A native tool call.
    Call(ToolCall),
}

/// A system message.
pub fn system(text: String) -> ChatCompletionRequestMessage {
    ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
        content: text.into(),
        name: None,
    })
}

/// A user message.
pub fn user(text: String) -> ChatCompletionRequestMessage {
    ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
        content: text.into(),
        name: None,
    })
}

/// The model's own reply, echoed.
pub fn assistant(echo: Echo) -> ChatCompletionRequestMessage {
    let mut m = ChatCompletionRequestAssistantMessage::default();
    match echo {
        Echo::Text(t) => m.content = Some(t.into()),
        Echo::Call(c) => {
            m.tool_calls = Some(vec![ChatCompletionMessageToolCalls::Function(
                ChatCompletionMessageToolCall {
                    id: c.id,
                    function: FunctionCall {
                        name: c.name,
                        arguments: c.arguments,
                    },
                },
            )]);
        }
    }
    ChatCompletionRequestMessage::Assistant(m)
}

/// A tool result: a `tool` message answering the call `call_id`, or (JSON
/// plans, no call) a user message.
pub fn tool_result(text: String, call_id: Option<String>) -> ChatCompletionRequestMessage {
    match call_id {
        Some(id) => ChatCompletionRequestMessage::Tool(ChatCompletionRequestToolMessage {
            content: text.into(),
            tool_call_id: id,
        }),
        None => user(text),
    }
}
