// The synced data model between the core's types and a WIT binding of `engine` (bound as
// `wit` where this file is included): field for field. Included by `component/` (wit-bindgen)
// and `host-native/` (wasmtime), whose generated types have the same names and fields.

fn usage_to_wit(v: agentsync_core::model::TokenUsage) -> wit::TokenUsage {
    wit::TokenUsage {
        cache_creation: v.cache_creation,
        cache_read: v.cache_read,
        input: v.input,
        output: v.output,
        reasoning: v.reasoning,
    }
}

fn result_event_to_wit(v: agentsync_core::model::ToolResultEvent) -> wit::ToolResultEvent {
    wit::ToolResultEvent {
        content: v.content,
        source: v.source,
        status: v.status,
        subagent_session: v.subagent_session,
        timestamp_ms: v.timestamp_ms,
    }
}

fn tool_call_to_wit(v: agentsync_core::model::ToolCall) -> wit::ToolCall {
    wit::ToolCall {
        category: v.category,
        file_path: v.file_path,
        id: v.id,
        input: v.input,
        is_error: v.is_error,
        name: v.name,
        result: v.result,
        subagent_session: v.subagent_session,
        result_events: v.result_events.into_iter().map(result_event_to_wit).collect(),
    }
}

fn message_to_wit(v: agentsync_core::model::Message) -> wit::Message {
    wit::Message {
        abandoned: v.abandoned,
        api_message_id: v.api_message_id,
        compact_boundary: v.compact_boundary,
        content: v.content,
        model: v.model,
        ordinal: v.ordinal,
        parent_uuid: v.parent_uuid,
        request_id: v.request_id,
        role: v.role,
        sidechain: v.sidechain,
        source_uuid: v.source_uuid,
        system: v.system,
        thinking: v.thinking,
        timestamp_ms: v.timestamp_ms,
        tool_calls: v.tool_calls.into_iter().map(tool_call_to_wit).collect(),
        usage: usage_to_wit(v.usage),
    }
}

fn usage_event_to_wit(v: agentsync_core::model::UsageEvent) -> wit::UsageEvent {
    wit::UsageEvent {
        message_ordinal: v.message_ordinal,
        source: v.source,
        model: v.model,
        cost_micro_usd: v.cost_micro_usd,
        occurred_ms: v.occurred_ms,
        dedup_key: v.dedup_key,
        usage: usage_to_wit(v.usage),
    }
}

fn usage_to_core(v: wit::TokenUsage) -> agentsync_core::model::TokenUsage {
    agentsync_core::model::TokenUsage {
        cache_creation: v.cache_creation,
        cache_read: v.cache_read,
        input: v.input,
        output: v.output,
        reasoning: v.reasoning,
    }
}

fn result_event_to_core(v: wit::ToolResultEvent) -> agentsync_core::model::ToolResultEvent {
    agentsync_core::model::ToolResultEvent {
        content: v.content,
        source: v.source,
        status: v.status,
        subagent_session: v.subagent_session,
        timestamp_ms: v.timestamp_ms,
    }
}

fn tool_call_to_core(v: wit::ToolCall) -> agentsync_core::model::ToolCall {
    agentsync_core::model::ToolCall {
        category: v.category,
        file_path: v.file_path,
        id: v.id,
        input: v.input,
        is_error: v.is_error,
        name: v.name,
        result: v.result,
        subagent_session: v.subagent_session,
        result_events: v.result_events.into_iter().map(result_event_to_core).collect(),
    }
}

fn message_to_core(v: wit::Message) -> agentsync_core::model::Message {
    agentsync_core::model::Message {
        abandoned: v.abandoned,
        api_message_id: v.api_message_id,
        compact_boundary: v.compact_boundary,
        content: v.content,
        model: v.model,
        ordinal: v.ordinal,
        parent_uuid: v.parent_uuid,
        request_id: v.request_id,
        role: v.role,
        sidechain: v.sidechain,
        source_uuid: v.source_uuid,
        system: v.system,
        thinking: v.thinking,
        timestamp_ms: v.timestamp_ms,
        tool_calls: v.tool_calls.into_iter().map(tool_call_to_core).collect(),
        usage: usage_to_core(v.usage),
    }
}

fn usage_event_to_core(v: wit::UsageEvent) -> agentsync_core::model::UsageEvent {
    agentsync_core::model::UsageEvent {
        message_ordinal: v.message_ordinal,
        source: v.source,
        model: v.model,
        cost_micro_usd: v.cost_micro_usd,
        occurred_ms: v.occurred_ms,
        dedup_key: v.dedup_key,
        usage: usage_to_core(v.usage),
    }
}

fn session_to_wit(v: agentsync_core::model::Session) -> wit::Session {
    wit::Session {
        native_id: v.native_id.to_string(),
        agent: v.agent,
        parser: v.parser,
        project: v.project,
        cwd: v.cwd,
        git_branch: v.git_branch,
        started_ms: v.started_ms,
        ended_ms: v.ended_ms,
        title: v.title,
        first_message: v.first_message,
        parent_session: v.parent_session,
        relationship: v.relationship,
        user_message_count: v.user_message_count,
    }
}

fn session_to_core(
    v: wit::Session,
) -> Result<agentsync_core::model::Session, agentsync_core::Error> {
    Ok(agentsync_core::model::Session {
        native_id: v.native_id.parse()?,
        agent: v.agent,
        parser: v.parser,
        project: v.project,
        cwd: v.cwd,
        git_branch: v.git_branch,
        started_ms: v.started_ms,
        ended_ms: v.ended_ms,
        title: v.title,
        first_message: v.first_message,
        parent_session: v.parent_session,
        relationship: v.relationship,
        user_message_count: v.user_message_count,
    })
}

pub(super) fn apply_unit_to_wit(v: agentsync_core::sync::import::ApplyUnit) -> wit::ApplyUnit {
    wit::ApplyUnit {
        gid: v.gid.to_string(),
        session: session_to_wit(v.session),
        from_ordinal: v.from_ordinal,
        messages: v.messages.into_iter().map(message_to_wit).collect(),
        message_count: v.message_count,
        usage_events: v.usage_events.into_iter().map(usage_event_to_wit).collect(),
        manifest: v.manifest.to_hex(),
    }
}

pub(super) fn apply_unit_to_core(
    v: wit::ApplyUnit,
) -> Result<agentsync_core::sync::import::ApplyUnit, agentsync_core::Error> {
    Ok(agentsync_core::sync::import::ApplyUnit {
        gid: v.gid.parse()?,
        session: session_to_core(v.session)?,
        from_ordinal: v.from_ordinal,
        messages: v.messages.into_iter().map(message_to_core).collect(),
        message_count: v.message_count,
        usage_events: v.usage_events.into_iter().map(usage_event_to_core).collect(),
        manifest: v.manifest.parse()?,
    })
}

pub(super) fn session_data_to_wit(v: agentsync_core::sync::engine::SessionData) -> wit::SessionData {
    wit::SessionData {
        session: session_to_wit(v.session),
        messages: v.messages.into_iter().map(message_to_wit).collect(),
        usage_events: v.usage_events.into_iter().map(usage_event_to_wit).collect(),
    }
}

pub(super) fn session_data_to_core(
    v: wit::SessionData,
) -> Result<agentsync_core::sync::engine::SessionData, agentsync_core::Error> {
    Ok(agentsync_core::sync::engine::SessionData {
        session: session_to_core(v.session)?,
        messages: v.messages.into_iter().map(message_to_core).collect(),
        usage_events: v.usage_events.into_iter().map(usage_event_to_core).collect(),
    })
}
