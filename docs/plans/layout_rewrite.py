#!/usr/bin/env python3
"""Issue 15: move copilot_server into rooms, one idea per module, and rewrite every import.

Usage (run from the repository root, on a tree where the other work has landed):

    python /tmp/layout_rewrite.py inventory            # what would move; names nobody placed
    python /tmp/layout_rewrite.py apply                # do it (files, splits, imports)
    python /tmp/layout_rewrite.py check                # compile, import every module, ruff
    python /tmp/layout_rewrite.py table                # markdown: new module -> names

`apply` is mechanical: it moves whole modules with a plain move, splits the modules that
hold several ideas by their top-level names (functions, classes, constants), copies each
part's imports and adds the imports between parts, rewrites every `from copilot_server...`
import in copilot_server/, tests/ and benchmarks/ (name by name: a name goes to the module
that now defines it, or to its package when the package re-exports it), turns module
attribute uses of split modules (`actions.code_actions`) into names, maps module paths in
strings ("copilot_server.demo"), puts relative imports back inside the package, renames the
language facts it moves into syntax/languages.py, and lets ruff drop unused imports and sort.

It changes no behaviour: statements move verbatim. What needs judgement (ports, settings
store, capabilities, one runner, one parse path) is in /tmp/layout_plan.md, after this.
Names that are not in the tables below go to the split's default module and are listed by
`inventory` and `apply` (place them by editing SPLITS, then run again on a fresh copy).
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

PKG = "copilot_server"

# -- the target layout ----------------------------------------------------------------------

# New packages and the one idea each holds (their __init__ docstring when created).
PACKAGES: dict[str, str] = {
    "copilot_server.cli": "The `copilot-server` command: serve (LSP), complete, explain, fix, "
    "context, bench, doctor, model, demo.",
    "copilot_server.lsp": "The only room that imports pygls/lsprotocol: handlers, conversions, "
    "the client port, status, code actions.",
    "copilot_server.documents": "Open documents, LSP positions (UTF-16 <-> str) and each "
    "document's edit history.",
    "copilot_server.syntax": "Tree-sitter: languages and their facts, the incremental tree, and "
    "the readers (definitions, scopes, imports, problems).",
    "copilot_server.context": "What the model sees around the cursor: windows, scopes, imports, "
    "definitions, similar snippets, the workspace index.",
    "copilot_server.prompts": "Prompts from the model's own tokens: FIM/SPM/chat templates, "
    "token healing, layout for KV reuse, next-edit prompts.",
    "copilot_server.completion": "The path of one inline completion: service, caches, early "
    "answers, metrics, the model worker.",
    "copilot_server.trimming": "Deciding while the model streams when a suggestion is whole, "
    "then tidying and syntax-checking it.",
    "copilot_server.actions": "Explain and fix: regions, edits, prose trimming, the work on the "
    "model thread.",
    "copilot_server.engines.remote": "Engines whose model runs on a server: HTTP+SSE, "
    "tokenizers, one module per backend.",
    "copilot_server.benchmarks": "",  # exists
    "copilot_server.next_edit": "",  # exists
}

# Docstrings of the modules the splits create (one line: the module's one idea).
DOCS: dict[str, str] = {
    "copilot_server.sequences": "Where two sequences (texts or token lists) agree: the common "
    "prefix and suffix, one implementation for every caller.",
    "copilot_server.stats": "Percentiles and summaries of timings: one definition of p50/p95 "
    "for metrics, benchmarks and reports.",
    "copilot_server.cli.main": "The argument parser and the dispatch to each subcommand.",
    "copilot_server.cli.common": "What the subcommands share: settings from flags, the engine, "
    "reading a user's file, position arguments.",
    "copilot_server.cli.serve": "`copilot-server --stdio | --tcp`: run the language server.",
    "copilot_server.cli.complete": "`copilot-server complete FILE --line --character`: one "
    "completion, headless.",
    "copilot_server.cli.model": "`copilot-server model`: assemble/verify the model, print its path.",
    "copilot_server.cli.doctor": "`copilot-server doctor`: the model, GPU offload and measured "
    "speed here.",
    "copilot_server.cli.bench": "`copilot-server bench`: the command; the benchmarks live in "
    "copilot_server/benchmarks/.",
    "copilot_server.benchmarks.run": "Run the benchmark suites (typing, holes, HumanEval) for "
    "ours and the naive client.",
    "copilot_server.benchmarks.report": "Verdicts, tables, plot and published results of a "
    "benchmark run.",
    "copilot_server.lsp.convert": "LSP values <-> our typed values, at the edge: positions, "
    "requests, result items, workspace folders.",
    "copilot_server.lsp.code_actions": "textDocument/codeAction, codeAction/resolve and the "
    "explain/fix commands, on the action service.",
    "copilot_server.documents.history": "Each open document's recent edits, coalesced into hunks.",
    "copilot_server.syntax.tree": "One document's tree-sitter tree kept in step with each edit; "
    "one-shot parses.",
    "copilot_server.syntax.definitions": "What a file defines and how a definition is shown to "
    "the model (signature or short body).",
    "copilot_server.syntax.outline": "A document's definitions, re-read only where the text "
    "changed.",
    "copilot_server.syntax.scopes": "The classes/functions enclosing the cursor, as headers.",
    "copilot_server.syntax.imports": "Import statements near the top of a tree.",
    "copilot_server.syntax.problems": "Syntax problems (ERROR/MISSING nodes) of a tree.",
    "copilot_server.syntax.text": "Code read as text, without a tree: indentation, strings "
    "skipped, brackets counted.",
    "copilot_server.context.types": "The values the context room hands on: `Context`, `Snippet`.",
    "copilot_server.context.windows": "Prefix/suffix windows of whole lines within token "
    "budgets, aligned for KV reuse.",
    "copilot_server.context.engine": "The context engine: builds a `Context` per request from "
    "the document's tree, open files and the index.",
    "copilot_server.context.index": "The workspace index: definitions of every source file, "
    "kept fresh by watchfiles.",
    "copilot_server.context.files": "Which workspace files may be read: skipped folders, "
    ".gitignore rules, likely secrets.",
    "copilot_server.context.index_worker": "Parsing files for the index (in a worker process).",
    "copilot_server.prompts.prompt": "The `Prompt` value: tokens, parts, stop tokens, healing.",
    "copilot_server.prompts.templates": "Which prompt format a model understands, read from its "
    "GGUF; resolved once per engine.",
    "copilot_server.prompts.tokens": "Tokenizing prompt parts (special tokens stay text) and "
    "taking back a cut word for healing.",
    "copilot_server.prompts.fim": "Fill-in-the-middle prompts (PSM and SPM): stable parts "
    "first, the typed line last.",
    "copilot_server.prompts.chat": "Chat prompts with the model's own chat template, for models "
    "without FIM tokens and for explain/fix.",
    "copilot_server.prompts.whitespace": "Indentation healing: the prompt never ends in spaces; "
    "the model's whitespace is matched to what was typed.",
    "copilot_server.prompts.layout": "Lead lines: lines typed since the last aligned line go "
    "after the middle token, so typing only appends.",
    "copilot_server.completion.types": "Request and result of one completion, and the context "
    "builder the service takes.",
    "copilot_server.completion.metrics": "Local counters of the completion path (nothing is "
    "sent anywhere).",
    "copilot_server.completion.service": "CompletionService: cache -> supersede -> context -> "
    "prompt -> engine -> trimmer.",
    "copilot_server.trimming.request": "What the trimmer knows of a request (`TrimRequest`) and "
    "what the rules see (`Seen`).",
    "copilot_server.trimming.rules": "The named stream rules: each says go on, or how many lines "
    "to keep.",
    "copilot_server.trimming.chat": "Chat-model output: fences, prose and a restated prefix "
    "around the code.",
    "copilot_server.trimming.cleanup": "Final clean-up: trailing blanks, closers the line suffix "
    "already has.",
    "copilot_server.trimming.syntax_check": "Cut a suggestion back to its longest prefix that "
    "adds no syntax error to the window.",
    "copilot_server.trimming.trimmer": "`Trimmer`: the stream rules run once per token; "
    "`finish` gives the text to show.",
    "copilot_server.actions.regions": "Which lines a fix rewrites and an explanation covers.",
    "copilot_server.actions.edits": "The smallest edits from an old region to its rewrite.",
    "copilot_server.actions.fix": "A fix: prompt, generation, the rewrite fitted to the region, "
    "checked by re-parsing.",
    "copilot_server.actions.explain": "An explanation: the region, the helpers it uses, a "
    "prose answer.",
    "copilot_server.actions.prose": "Prose stop rules for explanations.",
    "copilot_server.actions.progress": "Token counts reported while an action generates.",
    "copilot_server.engines.families": "Each model family's FIM special tokens, and finding a "
    "family by name.",
    "copilot_server.engines.tokens": "One token cache per model: texts -> token counts.",
    "copilot_server.engines.remote.http": "HTTP+SSE to a model server: kept-alive JSON calls, "
    "streams closed on cancel, errors that say what to check.",
    "copilot_server.engines.remote.tokenizers": "The served model's tokens: server tokenizer, "
    "local vocabulary, or approximate pieces; remembered both ways.",
    "copilot_server.engines.remote.engine": "`RemoteEngine`: the Engine protocol over a model "
    "server.",
    "copilot_server.engines.remote.openai": "The OpenAI-compatible backend: /v1/completions "
    "request body and stream events.",
    "copilot_server.engines.remote.llama_server": "The llama-server backend: /infill and "
    "/completion bodies and stream events.",
    "copilot_server.prompts.next_edit": "Next-edit prompts: recent hunks as original/updated "
    "blocks and the window to rewrite.",
}

# Old docstrings that stay the best description: new module or package -> old module.
KEEP_DOC: dict[str, str] = {
    "copilot_server.syntax.tree": "copilot_server.syntax",
    "copilot_server.context.types": "copilot_server.context",
    "copilot_server.completion.service": "copilot_server.completions",
    "copilot_server.context.index": "copilot_server.index",
    "copilot_server.cli.main": "copilot_server.cli",
    "copilot_server.benchmarks.run": "copilot_server.bench",
    "copilot_server.engines.remote.engine": "copilot_server.engines.remote",
    # packages: the room's old module said what the room does
    "copilot_server.actions": "copilot_server.actions",
    "copilot_server.trimming": "copilot_server.trimming",
}

# Whole modules that move as they are (a plain move of the file).
MOVES: dict[str, str] = {
    "copilot_server.positions": "copilot_server.documents.positions",
    "copilot_server.documents": "copilot_server.documents.store",
    "copilot_server.languages": "copilot_server.syntax.languages",
    "copilot_server.chat": "copilot_server.prompts.chat",
    "copilot_server.templates": "copilot_server.prompts.templates",
    "copilot_server.lsp_edges": "copilot_server.lsp.convert",
    "copilot_server.server": "copilot_server.lsp.server",
    "copilot_server.status": "copilot_server.lsp.status",
    "copilot_server.actions_cli": "copilot_server.cli.actions",
    "copilot_server.context_cli": "copilot_server.cli.context",
    "copilot_server.demo": "copilot_server.cli.demo",
    "copilot_server.doctor": "copilot_server.cli.doctor",
    "copilot_server.context_engine": "copilot_server.context.engine",
    "copilot_server.next_edit.lsp": "copilot_server.lsp.next_edit",
    "copilot_server.next_edit.history": "copilot_server.documents.history",
    "copilot_server.notebooks": "copilot_server.context.notebooks",
    "copilot_server.secrets": "copilot_server.context.secrets",
}

# Files (not modules) that move: the top-level benchmarks folder, the query files.
FILE_MOVES: dict[str, str] = {
    "copilot_server/grammars": "copilot_server/syntax/grammars",
    "benchmarks/bench_context.py": "copilot_server/benchmarks/context.py",
    "benchmarks/bench_healing.py": "copilot_server/benchmarks/healing.py",
    "benchmarks/soak.py": "copilot_server/benchmarks/soak.py",
    "benchmarks/README.md": "copilot_server/benchmarks/README.md",
}

# Modules that leave in parts: {new module: [top-level names]}; "*" is the default part:
# [its module, the names expected there]; a name listed nowhere also goes there and is
# reported (a name the other work added since this table was written: place it).
SPLITS: dict[str, dict[str, list[str]]] = {
    "copilot_server.actions": {
        "copilot_server.syntax.problems": [
            "SyntaxProblem", "syntax_problems", "_first_leaf", "_node_text",
        ],
        "copilot_server.syntax.tree": ["parse"],
        "copilot_server.syntax.languages": ["_DEFINITION_TYPE", "_DECLARATION_WORDS",
                                            "_IMPORT_WORDS"],
        "copilot_server.actions.regions": [
            "MAX_FIX_LINES", "MAX_EXPLAIN_LINES", "Region", "_indent_of", "_line_complete",
            "fix_region", "_extend_with_body", "explain_region", "_node_region",
            "_offset_of_line", "region_span", "_explain_target",
        ],
        "copilot_server.actions.edits": [
            "Edit", "region_edits", "_common_suffix_len", "apply_edits", "unified_diff",
        ],
        "copilot_server.actions.prose": [
            "_SENTENCE_END", "_NOT_AN_END", "_sentence_ends", "_norm", "stop_at_fence",
            "stop_at_code_echo", "stop_at_repeated_sentence", "stop_at_second_paragraph",
            "stop_at_sentence_cap", "PROSE_RULES", "ProseTrimmer",
        ],
        "copilot_server.actions.progress": ["TokenCallback", "_counting"],
        "copilot_server.actions.fix": [
            "_FENCE_RE", "extract_code", "fit_to_region", "_common_indent", "_cut_off",
            "fix_stream_done", "FixOutcome", "_short", "check_fix", "compute_fix",
        ],
        "copilot_server.actions.explain": [
            "EXPLAIN_SENTENCES", "Explanation", "context_snippets", "_WORD", "_import_names",
            "_defined_name", "compute_explanation",
        ],
        # Everything that takes the server (`ls`) or an lsprotocol type.
        "*": [
            "copilot_server.lsp.code_actions", "EXPLAIN_COMMAND", "FIX_COMMAND",
            "EXPLANATION_NOTIFICATION", "EXPLAIN_KIND", "FIX_KIND", "CODE_ACTION_KINDS", "_wants",
            "_lsp_range", "_supports_resolve", "_fix_action", "code_actions", "_tree_of",
            "_explain_action", "_range_dict", "_progress", "ModelUnavailable", "_on_model",
            "resolve_code_action", "fix_command", "_fix_for", "workspace_edit", "explain_command",
        ],
    },
    "copilot_server.completions": {
        "copilot_server.completion.types": [
            "Superseded", "CompletionRequest", "CompletionResult", "ContextBuilder",
        ],
        "copilot_server.completion.metrics": ["Metrics", "SERVER_MS_WINDOW"],
        "copilot_server.prompts.whitespace": [
            "trailing_whitespace", "without_trailing_whitespace", "healed",
        ],
        "copilot_server.prompts.layout": ["LEAD_LINES", "with_lead_lines"],
        "copilot_server.context.windows": ["default_context_builder"],
        "*": [
            "copilot_server.completion.service", "_Early", "_Continuation", "_resolve", "_Shown",
            "CompletionService", "_as_background", "_model_ms", "_prompt_key", "_ms",
            "SHOWN_DOCUMENTS", "ALTERNATIVES_CACHE",
        ],
    },
    "copilot_server.context": {
        "copilot_server.context.types": ["TokenCounter", "ALIGN_LINES", "Snippet", "Context"],
        "copilot_server.engines.tokens": ["MAX_CACHED_CHARS", "CachedTokenCounter"],
        "*": [
            "copilot_server.context.windows", "window_before", "window_after", "split_at_cursor",
            "plain_context", "line_window_before", "line_window_after",
        ],
    },
    "copilot_server.context_engine": {
        "copilot_server.syntax.languages": ["_FAMILY", "_IDENTIFIER"],
        "*": [
            "copilot_server.context.engine", "REGION_LINES", "NEAR_ABOVE", "NEAR_BELOW",
            "MAX_NAMES", "MAX_DEFINITIONS", "CHUNK_LINES", "CHUNK_STEP", "MIN_SIMILARITY",
            "MAX_SIMILAR", "MAX_SIMILAR_SOURCES", "MAX_SOURCE_CHARS", "IDLE_REPARSE_S",
            "COUNT_AHEAD_LINES", "REGION_CACHE", "TREE_CACHE", "OUTLINE_CACHE", "CHUNK_CACHE",
            "LINE_WORDS_CACHE", "LINE_WORDS_CHARS", "LINE_WORDS_MAX_LINE", "_LOOKUP", "EngineStats", "_Region", "_ByName", "_Chunk",
            "_Request", "ContextEngine", "req_path_abs", "_words", "_is_secret",
            "make_context_builder",
        ],
    },
    "copilot_server.index": {
        "copilot_server.context.files": [
            "SKIP_DIRS", "SECRET_PATTERNS", "_is_secret_name", "is_secret_path", "IgnoreRules",
            "_stat_is_plain_file", "_inside", "_read_no_follow",
        ],
        "copilot_server.context.index_worker": [
            "MAX_DEFINITIONS_PER_FILE", "MAX_DEFINITION_CHARS", "_Parsed", "_PARSERS",
            "_PARSERS_LOCK", "_lower_priority", "parse_files", "_parse_file",
        ],
        "copilot_server.lsp.convert": ["workspace_folders"],
        "*": [
            "copilot_server.context.index", "MAX_DEFINITIONS", "BATCH", "RECENT_FILES",
            "WATCH_DEBOUNCE_MS", "IndexStats", "_FileEntry", "WorkspaceIndex",
        ],
    },
    "copilot_server.syntax": {
        "copilot_server.sequences": ["_common_prefix_len", "_common_suffix_len"],
        "copilot_server.syntax.definitions": [
            "SHORT_DEFINITION_LINES", "SHORT_DEFINITION_CHARS", "MAX_MEMBERS",
            "MAX_HEADER_LINES", "_WRAPPERS", "_FUNCTION_KINDS", "_CLASS_KINDS", "Definition",
            "FoundDefinition", "find_definitions", "_widen", "_NAME_TAIL", "_last_part",
            "summarize", "_body_of", "_has_member_definitions", "_member_lines", "_elide_rest",
            "_ellipsis_line", "_is_docstring", "_python_docstring", "_decode", "_indent_of",
            "_dedent",
        ],
        "copilot_server.syntax.outline": ["OutlineEntry", "Outline"],
        "copilot_server.syntax.scopes": [
            "Scope", "scope_chain", "_closed_by_missing", "_last_code_byte", "_indent_width",
        ],
        "copilot_server.syntax.imports": ["IMPORT_DEPTH", "ImportBlock", "find_imports"],
        "*": [
            "copilot_server.syntax.tree", "SyntaxTree", "_SURROGATE", "utf8", "_byte_len",
            "_end_point",
        ],
    },
    "copilot_server.trimming": {
        "copilot_server.syntax.languages": [
            "_LINE_COMMENT", "_DEFAULT_COMMENT", "_COMMENT_STARTS", "_DEFINITION",
        ],
        "copilot_server.syntax.text": [
            "_PAIRS", "_OPENING", "_indent_width", "_code_part", "_bracket_delta",
            "_strip_strings",
        ],
        "copilot_server.trimming.rules": [
            "_is_closer_line", "_suffix_starts_with", "stop_after_first_line", "_scope_floor",
            "stop_at_block_end", "stop_at_unmatched_closer", "stop_at_closed_block",
            "stop_at_suffix_repeat", "stop_at_repeated_lines", "stop_at_next_definition",
            "stop_at_line_cap", "stop_at_blank_run", "stop_at_token_cap", "STREAM_RULES",
        ],
        "copilot_server.trimming.chat": [
            "stop_at_fence", "_PROSE_START", "_PROSE_LABEL", "looks_like_prose",
            "stop_at_prose", "skip_lead_in", "_restated_lines",
        ],
        "copilot_server.trimming.cleanup": ["tidy", "_balance", "_drop_suffix_overlap"],
        "copilot_server.trimming.syntax_check": [
            "_parsers", "_parser_lock", "_parser", "_errors", "UNTRUSTED_ERRORS", "_CLOSING",
            "_BRACKET", "_brackets", "_then", "_closers", "syntax_cut_back", "_candidates",
        ],
        "copilot_server.trimming.trimmer": ["Trimmer"],
        "*": [
            "copilot_server.trimming.request", "OPENERS", "CLOSERS", "TrimRequest", "Seen", "Rule",
            "_next_line_index",
        ],
    },
    "copilot_server.templates": {
        "copilot_server.engines.families": [
            "FimFamily", "FAMILIES", "_BY_NAME", "_family_by_name",
        ],
        "*": [
            "copilot_server.prompts.templates", "PromptError", "GENERIC", "CHAT", "TEMPLATE_NAMES",
            "_BOS_TEXTS", "_CHAT_STOPS", "Template", "_layout_roles", "special_token",
            "_first_token", "_meta_int", "adds_leading_space", "bos_token", "_INSTRUCT",
            "is_instruct_build", "base_build_name", "_build_warnings", "resolve_template", "_auto",
            "_with_source", "_family", "_generic", "_chat", "_chat_warnings", "describe_template",
        ],
    },
    "copilot_server.prompts": {
        "copilot_server.prompts.prompt": ["REPO_NAME", "PromptPart", "Prompt"],
        "copilot_server.prompts.templates": ["_resolved", "template_for"],
        "copilot_server.prompts.tokens": [
            "_TOKEN_CACHE", "_TOKEN_CACHE_SIZE", "_tok", "_tok_inner", "_healed",
            "_inside_word",
        ],
        "copilot_server.prompts.chat": [
            "_FENCE_NAMES", "fence_language", "chat_request_text", "chat_head_tokens",
            "build_chat_prompt",
        ],
        "*": [
            "copilot_server.prompts.fim", "build_fim_prompt", "_with_snippet_preamble",
            "_repo_context", "_prefix_first", "_suffix_first",
        ],
    },
    "copilot_server.engines.remote": {
        "copilot_server.engines.remote.http": [
            "CONNECT_TIMEOUT_CAP_S", "FAIL_FAST_S", "BACKOFF_BASE_S", "BACKOFF_MAX_S",
            "CANCEL_POLL_S", "RETRY_STATUSES", "RemoteEngineError", "_HttpStatusError",
            "Endpoint", "_describe_oserror", "_retryable", "_Http", "_error_detail",
            "_detail_suffix", "_Stream", "_decode_event", "_Chunk", "_int",
        ],
        "copilot_server.engines.families": ["_family_texts", "family_for_name"],
        "copilot_server.engines.remote.tokenizers": [
            "TOKEN_MEMORY_SIZE", "_MARKERS", "_SPECIAL_SHAPE", "_looks_special",
            "_split_special_text", "_Tokenizer", "_TokenizeApi", "_TOKENIZE_APIS",
            "_PROBE_TEXT", "_ServerTokenizer", "_tokens_of", "_VocabTokenizer",
            "_TextTokenizer", "_TokenMemory",
        ],
        "copilot_server.engines.remote.openai": ["_OPENAI_FINISH", "_openai_event"],
        "copilot_server.engines.remote.llama_server": ["_LLAMA_STOP", "_llama_event"],
        "*": [
            "copilot_server.engines.remote.engine", "DEFAULT_URLS", "_Served", "_InfillLayout",
            "RemoteEngine", "_ms", "_display_name", "_same_model", "_forget_templates",
            "create_remote_engine",
        ],
    },
    "copilot_server.cli": {
        "copilot_server.cli.common": [
            "_language_for", "_load_settings", "_common", "_profile_option", "_load_engine",
            "_context_builder", "_now",
        ],
        "copilot_server.cli.serve": ["serve"],
        "copilot_server.cli.model": ["cmd_model"],
        "copilot_server.cli.complete": ["cmd_complete"],
        "copilot_server.cli.doctor": ["cmd_doctor", "_flatten"],
        "*": ["copilot_server.cli.main", "build_parser", "_extra_commands", "main"],
    },
    "copilot_server.source_files": {
        "copilot_server.sequences": ["common_prefix_length"],
        "*": ["copilot_server.cli.common", "read_source"],
    },
    "copilot_server.bench": {
        "copilot_server.cli.bench": ["register_cli", "_handle"],
        "copilot_server.benchmarks.report": [
            "P50_RATIO", "P95_RATIO", "SERVER_MS_P95", "MEMORY_OVER_MODEL", "SIMILARITY_MARGIN",
            "HUMANEVAL_EXACT", "HUMANEVAL_PASS", "targets", "_at_least", "_hole_targets",
            "_verdict", "headline_rows", "render", "plot_latency", "compact", "publish",
            "results_markdown",
        ],
        "*": [
            "copilot_server.benchmarks.run", "SUITES", "sizes", "EXTRA_CORPUS", "default_corpus",
            "run_bench", "_say",
        ],
    },
    "copilot_server.benchmarks.common": {
        "copilot_server.stats": ["percentile", "summary"],
        "*": [
            "copilot_server.benchmarks.common", "FIM_MAX_TOKENS", "ratio", "edit_similarity",
            "normalise_lines", "first_line", "utf16_len", "machine_label", "stdlib_dir",
            "rss_bytes", "to_jsonable", "write_json", "fmt", "table",
        ],
    },
    "copilot_server.next_edit.history": {
        # changed_span stays: tests patch it on the history module.
        "copilot_server.sequences": ["common_prefix_len", "common_suffix_len", "_BLOCK"],
        "*": [
            "copilot_server.documents.history", "MAX_HUNKS_PER_DOCUMENT", "MAX_HUNKS_TOTAL",
            "COALESCE_S", "MAX_HUNK_CHARS", "Hunk", "PendingChange", "EditHistory",
            "changed_span",
        ],
    },
    "copilot_server.next_edit.rewrite": {
        "copilot_server.prompts.next_edit": [
            "MAX_HUNKS", "MAX_HUNK_LINES", "MAX_DEFINITION_CHARS", "SYSTEM", "INSTRUCTION",
            "_SWEEP_NAME", "RewritePrompt", "original_window", "hunk_blocks", "build_prompt",
            "_sweep_tokens", "_chat_tokens", "is_next_edit_model", "Window", "window_around",
            "_line_offset", "WINDOW_LINES", "EXTRA_LINES", "_closing_fence", "_clip_lines",
            "window_tail",
        ],
        "copilot_server.syntax.languages": ["_FENCE_LANGUAGES"],
        "*": [
            "copilot_server.next_edit.rewrite", "RewriteResult", "window_complete", "run_rewrite",
        ],
    },
}

# Names a split leaves behind in favour of an equal one elsewhere: every use is renamed.
# (module, name) -> (module of the survivor, its name). Checked equal by hand (plan §3).
DEDUPE: dict[tuple[str, str], tuple[str, str]] = {
    ("copilot_server.syntax", "_common_prefix_len"): ("copilot_server.sequences",
                                                      "common_prefix_len"),
    ("copilot_server.syntax", "_common_suffix_len"): ("copilot_server.sequences",
                                                      "common_suffix_len"),
    ("copilot_server.source_files", "common_prefix_length"): ("copilot_server.sequences",
                                                              "common_prefix_len"),
    ("copilot_server.actions", "_common_suffix_len"): ("copilot_server.sequences",
                                                       "common_suffix_len"),
    ("copilot_server.actions", "_WORD"): ("copilot_server.syntax.languages", "IDENTIFIER"),
}

# Private names that become public where they land (module of arrival, old -> new).
RENAMES: dict[tuple[str, str], str] = {
    ("copilot_server.syntax.languages", "_LINE_COMMENT"): "LINE_COMMENTS",
    ("copilot_server.syntax.languages", "_DEFAULT_COMMENT"): "DEFAULT_LINE_COMMENT",
    ("copilot_server.syntax.languages", "_COMMENT_STARTS"): "COMMENT_STARTS",
    ("copilot_server.syntax.languages", "_DEFINITION"): "DEFINITION_LINE",
    ("copilot_server.syntax.languages", "_DEFINITION_TYPE"): "DEFINITION_NODE_TYPE",
    ("copilot_server.syntax.languages", "_DECLARATION_WORDS"): "DECLARATION_WORDS",
    ("copilot_server.syntax.languages", "_IMPORT_WORDS"): "IMPORT_WORDS",
    ("copilot_server.syntax.languages", "_FAMILY"): "LANGUAGE_FAMILY",
    ("copilot_server.syntax.languages", "_IDENTIFIER"): "IDENTIFIER",
    ("copilot_server.syntax.languages", "_FENCE_LANGUAGES"): "FENCE_LANGUAGES",
    ("copilot_server.syntax.text", "_PAIRS"): "CLOSING_TO_OPENING",
    ("copilot_server.syntax.text", "_OPENING"): "OPENING",
    ("copilot_server.syntax.text", "_indent_width"): "indent_width",
    ("copilot_server.syntax.text", "_code_part"): "code_part",
    ("copilot_server.syntax.text", "_bracket_delta"): "bracket_delta",
    ("copilot_server.syntax.text", "_strip_strings"): "strip_strings",
    ("copilot_server.syntax.problems", "_first_leaf"): "first_leaf",
    ("copilot_server.syntax.problems", "_node_text"): "node_text",
    ("copilot_server.sequences", "_BLOCK"): "_BLOCK",
}

# The names each package re-exports (its API for other rooms); inside the package its own
# modules import from the defining module.
EXPORTS: dict[str, list[str]] = {
    "copilot_server.documents": ["Document", "DocumentStore", "uri_to_path"],
    "copilot_server.syntax": ["SyntaxTree", "Outline", "find_definitions", "find_imports",
                              "scope_chain", "summarize"],
    "copilot_server.trimming": ["Trimmer", "TrimRequest", "Seen", "STREAM_RULES",
                                "looks_like_prose", "syntax_cut_back", "tidy"],
    "copilot_server.prompts": None,  # keeps its own __all__
    "copilot_server.engines.remote": ["RemoteEngine", "RemoteEngineError",
                                      "create_remote_engine"],
    "copilot_server.cli": ["main"],
    "copilot_server.completion": ["CompletionRequest", "CompletionResult", "Superseded"],
    "copilot_server.context": ["ALIGN_LINES", "Context", "Snippet", "TokenCounter"],
    "copilot_server.actions": [
        "MAX_FIX_LINES", "Edit", "Explanation", "FixOutcome", "ProseTrimmer", "Region",
        "apply_edits", "check_fix", "compute_explanation", "compute_fix", "context_snippets",
        "explain_region", "extract_code", "fit_to_region", "fix_region", "region_edits",
        "region_span", "unified_diff",
    ],
}

# Small edits after the moves, where a moved statement must say where it now stands.
POST_EDITS: list[tuple[str, str, str]] = [
    # The survivors serve token lists too (engines/kv_reuse, prompt lookup).
    ("copilot_server/sequences.py", "def common_prefix_len(a: str, b: str) -> int:",
     "def common_prefix_len(a: Sequence, b: Sequence) -> int:"),
    ("copilot_server/sequences.py", "from __future__ import annotations\n",
     "from __future__ import annotations\n\nfrom collections.abc import Sequence\n"),
    # The surviving common_suffix_len serves callers without a floor (actions' edits).
    ("copilot_server/sequences.py", "def common_suffix_len(a: str, b: str, floor: int) -> int:",
     "def common_suffix_len(a: str, b: str, floor: int = 0) -> int:"),
    # Query files now live beside the syntax room.
    ("copilot_server/syntax/languages.py", 'resources.files("copilot_server") / "grammars"',
     'resources.files("copilot_server.syntax") / "grammars"'),
    ("pyproject.toml", '"grammars/**/*.scm"', '"syntax/grammars/**/*.scm"'),
    # The CLI's contributed subcommands moved into cli/.
    ("copilot_server/cli/main.py", '"copilot_server.benchmarks.run"', '"copilot_server.cli.bench"'),
]

# -- reading modules -------------------------------------------------------------------------


def module_of(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def path_of(module: str, root: Path, package: bool = False) -> Path:
    base = root.joinpath(*module.split("."))
    return base / "__init__.py" if package else base.with_suffix(".py")


def existing_path(module: str, root: Path) -> Path | None:
    for candidate in (path_of(module, root), path_of(module, root, package=True)):
        if candidate.is_file():
            return candidate
    return None


def line_offsets(text: str) -> list[int]:
    offsets = [0]
    for line in text.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return offsets


def span(node: ast.AST, offsets: list[int]) -> tuple[int, int]:
    start = offsets[node.lineno - 1] + node.col_offset
    end = offsets[node.end_lineno - 1] + node.end_col_offset
    return start, end


def absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def defined_names(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    if isinstance(stmt, ast.Assign):
        return [t.id for t in stmt.targets if isinstance(t, ast.Name)]
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return [stmt.target.id]
    return []


def used_names(stmt: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}


def is_type_checking(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test)


def is_logger(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Assign) and "getLogger(" in ast.unparse(stmt.value)


@dataclass
class Piece:
    """One top-level statement with the comment lines above it."""

    names: list[str]
    text: str
    uses: set[str]
    is_def: bool = False


@dataclass
class Parsed:
    module: str
    path: Path
    text: str
    docstring: str | None
    header: list[str]  # import statements (absolute), TYPE_CHECKING blocks
    loggers: list[Piece]
    pieces: list[Piece]
    imported: dict[str, tuple[str, str]]  # local name -> (module, name)
    all_names: list[str] | None


def read_module(module: str, path: Path, root: Path) -> Parsed:
    text = path.read_text()
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    is_package = path.name == "__init__.py"
    docstring = None
    header: list[str] = []
    loggers: list[Piece] = []
    pieces: list[Piece] = []
    imported: dict[str, tuple[str, str]] = {}
    all_names = None
    previous_end = 0  # line index after the previous statement
    pieces_end = [-1]  # where the last piece (not an import) ended
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        docstring = "".join(lines[body[0].lineno - 1: body[0].end_lineno])
        previous_end = body[0].end_lineno
        body = body[1:]
    for stmt in body:
        first = stmt.lineno - 1
        decorators = getattr(stmt, "decorator_list", [])
        if decorators:
            first = min(first, decorators[0].lineno - 1)
        # Comment lines right under the previous statement (no blank line) belong to it;
        # the others (section banners, notes) to this statement.
        trailing = previous_end
        while trailing < first and lines[trailing].strip().startswith("#"):
            trailing += 1
        if trailing > previous_end and pieces and previous_end == pieces_end[0]:
            pieces[-1].text += "".join(lines[previous_end:trailing])
        lead = first
        while lead > trailing and (lines[lead - 1].strip().startswith("#")
                                   or not lines[lead - 1].strip()):
            lead -= 1
        while lead < first and not lines[lead].strip():
            lead += 1
        source = "".join(lines[lead: stmt.end_lineno])
        previous_end = stmt.end_lineno
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            if isinstance(stmt, ast.ImportFrom):
                mod = absolute(module, is_package, stmt)
                if mod == "__future__":
                    continue
                names = ", ".join(
                    a.name + (f" as {a.asname}" if a.asname else "") for a in stmt.names
                )
                header.append(f"from {mod} import {names}")
                for a in stmt.names:
                    imported[a.asname or a.name] = (mod, a.name)
            else:
                header.append(ast.unparse(stmt))
            continue
        if is_type_checking(stmt):
            inner = []
            for sub in stmt.body:
                if isinstance(sub, ast.ImportFrom):
                    mod = absolute(module, is_package, sub)
                    names = ", ".join(
                        a.name + (f" as {a.asname}" if a.asname else "") for a in sub.names
                    )
                    inner.append(f"    from {mod} import {names}")
                    for a in sub.names:
                        imported[a.asname or a.name] = (mod, a.name)
                else:
                    inner.append("    " + ast.unparse(sub))
            header.append("if TYPE_CHECKING:\n" + "\n".join(inner))
            continue
        names = defined_names(stmt)
        if names == ["__all__"]:
            all_names = list(ast.literal_eval(stmt.value))
            continue
        is_def = isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        piece = Piece(names or [f"<line {stmt.lineno}>"], source, used_names(stmt), is_def)
        (loggers if is_logger(stmt) else pieces).append(piece)
        if not is_logger(stmt):
            pieces_end[0] = stmt.end_lineno
    return Parsed(module, path, text, docstring, header, loggers, pieces, imported, all_names)


# -- the plan as data --------------------------------------------------------------------


@dataclass
class Layout:
    root: Path
    parsed: dict[str, Parsed] = field(default_factory=dict)
    splits: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    home: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    module_home: dict[str, str] = field(default_factory=dict)
    old_modules: set[str] = field(default_factory=set)
    keep_doc: dict[str, str] = field(default_factory=dict)  # target -> source of its docstring
    unplaced: dict[str, list[str]] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)

    def load(self) -> None:
        for path in (self.root / PKG).rglob("*.py"):
            self.old_modules.add(module_of(path, self.root))
        self.splits = {m: dict(parts) for m, parts in SPLITS.items()}
        destinations = {t for parts in SPLITS.values() for t, names in parts.items()
                        if t != "*"} | {parts["*"][0] for parts in SPLITS.values()}
        # A whole module whose new home also receives parts of others is written out too.
        for module, target in MOVES.items():
            if module not in self.splits and target in destinations:
                self.splits[module] = {"*": [target]}
        self.keep_doc.update(KEEP_DOC)
        for module, parts in self.splits.items():
            default = parts["*"][0]
            if module in MOVES or module not in SPLITS or default == module or \
                    default not in DOCS:
                self.keep_doc.setdefault(default, module)
        for module in sorted(set(self.splits) | set(MOVES)):
            path = existing_path(module, self.root)
            if path is None:
                self.missing.setdefault(module, []).append("(module not found)")
                continue
            self.parsed[module] = read_module(module, path, self.root)
        for module, target in MOVES.items():
            self.module_home[module] = target
        for module, parts in self.splits.items():
            parsed = self.parsed.get(module)
            if parsed is None:
                continue
            default = parts["*"][0]
            self.module_home[module] = default
            listed = {name: target for target, names in parts.items() if target != "*"
                      for name in names}
            present = {n for p in parsed.pieces + parsed.loggers for n in p.names}
            self.missing[module] = sorted(set(listed) - present)
            for piece in parsed.pieces:
                for name in piece.names:
                    target = listed.get(name)
                    if target is None:
                        target = default
                        if not name.startswith("<") and module in SPLITS and \
                                name not in parts["*"][1:]:
                            self.unplaced.setdefault(module, []).append(name)
                    self.home[(module, name)] = (target, RENAMES.get((target, name), name))
            for (mod, name), survivor in DEDUPE.items():
                if mod == module:
                    self.home[(module, name)] = survivor
        # A name a split module imported from elsewhere resolves to its own home.
        for module, parsed in self.parsed.items():
            for local, (mod, name) in parsed.imported.items():
                if mod.startswith(PKG):
                    self.home.setdefault((module, local), ("@import", f"{mod}:{name}"))

    def resolve(self, module: str, name: str, depth: int = 0) -> tuple[str, str]:
        """Where `name`, imported from `module`, is defined after the change."""
        found = self.home.get((module, name))
        if found is not None:
            target, new = found
            if target == "@import" and depth < 8:
                mod, _, orig = new.partition(":")
                return self.resolve(mod, orig, depth + 1)
            if target != "@import":
                return target, new
        if module in self.module_home:
            return self.module_home[module], name
        return module, name

    def new_module(self, module: str) -> str:
        """A module path after the change (for `import x` and strings)."""
        if module in self.module_home:
            return self.module_home[module]
        for old, new in sorted(self.module_home.items(), key=lambda kv: -len(kv[0])):
            if module.startswith(old + "."):
                return new + module[len(old):]
        return module


# -- writing the new modules -------------------------------------------------------------


def docstring_of(text: str) -> str:
    """A one-idea docstring, wrapped at the line length."""
    import textwrap

    one = f'"""{text}"""'
    if len(one) <= 100:
        return one + "\n"
    return '"""' + "\n".join(textwrap.wrap(text, 92)) + '\n"""\n'


def import_line(module: str, names: list[str], indent: str = "") -> str:
    one = f"{indent}from {module} import {', '.join(names)}"
    if len(one) <= 100:
        return one
    inner = "".join(f"{indent}    {n},\n" for n in names)
    return f"{indent}from {module} import (\n{inner}{indent})"


def build_targets(layout: Layout) -> dict[str, dict]:
    """new module -> {"pieces": [(source module, Piece)], "sources": [...]}"""
    targets: dict[str, dict] = defaultdict(lambda: {"pieces": []})
    order = sorted(layout.parsed, key=lambda m: (m not in layout.keep_doc.values(), m))
    for module in order:
        parsed = layout.parsed[module]
        if module not in layout.splits:
            continue
        for piece in parsed.pieces:
            name = piece.names[0]
            if (module, name) in DEDUPE:
                continue
            target, _ = layout.home.get((module, name), (layout.module_home[module], name))
            targets[target]["pieces"].append((module, piece))
    return targets


def rename_word(text: str, old: str, new: str) -> str:
    return re.sub(rf"(?<![\w.]){re.escape(old)}\b", new, text) if old != new else text


def render_target(layout: Layout, target: str, spec: dict) -> str:
    source_doc = layout.keep_doc.get(target)
    if source_doc in layout.parsed and layout.parsed[source_doc].docstring:
        docstring = layout.parsed[source_doc].docstring
    elif target in DOCS:
        docstring = docstring_of(DOCS[target])
    else:
        docstring = '"""TODO: one line saying what this module holds."""\n'
    header: list[str] = []
    loggers: list[str] = []
    body: list[tuple[bool, str]] = []
    local = {n for _m, p in spec["pieces"] for n in p.names}
    needs: dict[str, set[str]] = defaultdict(set)
    sources: list[str] = []
    for module, piece in spec["pieces"]:
        if module not in sources:
            sources.append(module)
        parsed = layout.parsed[module]
        text = piece.text
        for used in sorted(piece.uses):
            if used in parsed.imported:
                continue
            home = layout.home.get((module, used))
            if home is None or home[0] == "@import":
                continue
            target_module, new_name = home
            text = rename_word(text, used, new_name)
            if target_module != target:
                needs[target_module].add(new_name)
        # The names defined here that get a new name where they land.
        for name in piece.names:
            new_name = RENAMES.get((target, name))
            if new_name:
                text = rename_word(text, name, new_name)
        body.append((piece.is_def, text.rstrip("\n")))
    for module in sources:
        parsed = layout.parsed[module]
        for line in parsed.header:
            line = drop_self_imports(layout, line, target, local)
            if line and line not in header:
                header.append(line)
        uses = set().union(*(p.uses for m, p in spec["pieces"] if m == module))
        for logger in parsed.loggers:
            if set(logger.names) & uses and logger.text.rstrip("\n") not in loggers:
                loggers.append(logger.text.rstrip("\n"))
    lines = [docstring, "from __future__ import annotations\n"]
    lines += [h for h in header if not h.startswith("if TYPE_CHECKING")]
    for module, names in sorted(needs.items()):
        lines.append(import_line(module, sorted(names)))
    lines += [h for h in header if h.startswith("if TYPE_CHECKING")]
    lines.append("")
    lines += loggers
    out = "\n".join(lines).rstrip("\n") + "\n\n\n"
    previous_def = True
    for index, (is_def, text) in enumerate(body):
        if index:
            out += "\n\n\n" if (is_def or previous_def) else "\n"
        out += text
        previous_def = is_def
    return out + "\n"


def drop_self_imports(layout: Layout, line: str, target: str, local: set[str]) -> str:
    """A copied import line without the names that now live in `target` itself."""
    if not line.startswith("from "):
        return line
    node = ast.parse(line).body[0]
    if not isinstance(node, ast.ImportFrom):
        return line
    kept = []
    for alias in node.names:
        home, new = layout.resolve(node.module or "", alias.name)
        if (home == target or layout.new_module(node.module or "") == target) and \
                (new in local or alias.name in local or home == target):
            continue
        kept.append(alias.name + (f" as {alias.asname}" if alias.asname else ""))
    if not kept:
        return ""
    return import_line(node.module or "", kept)


# -- rewriting imports everywhere ------------------------------------------------------------


def package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def exported_by(target: str) -> str | None:
    """The package that re-exports `target`'s names, if any."""
    package = target.rpartition(".")[0]
    return package if package in EXPORTS else None


def rewrite_file(layout: Layout, path: Path, root: Path, exports: dict[str, set[str]],
                 report: list[str]) -> bool:
    text = path.read_text()
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        report.append(f"{path}: cannot parse ({exc})")
        return False
    offsets = line_offsets(text)
    module = module_of(path, root)
    in_package = module.startswith(PKG)
    is_package = path.name == "__init__.py"
    edits: list[tuple[int, int, str]] = []
    module_aliases: dict[str, str] = {}  # local name -> old module (a split module)
    module_objects: dict[str, str] = {}  # local name -> the module it names now
    lazy_aliases: set[str] = set()  # module aliases imported inside a function
    renamed: dict[str, str] = {}  # local old name -> new name, in this file
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = absolute(module, is_package, node) if in_package else (node.module or "")
            if not (mod == PKG or mod.startswith(PKG + ".")):
                continue
            groups: dict[str, list[str]] = {}
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                if sub in layout.splits:
                    # A module object of a split module: import what stands at its path now
                    # (the package of that name, else its default part) and turn attribute
                    # uses of names that went elsewhere into names.
                    local = alias.asname or alias.name
                    home = layout.module_home[sub]
                    imported = sub if home.startswith(sub + ".") else home
                    parent, _, last = imported.rpartition(".")
                    module_aliases[local] = sub
                    module_objects[local] = imported
                    if node.col_offset:
                        lazy_aliases.add(local)
                    groups.setdefault(parent, []).append(
                        last + (f" as {local}" if local != last else ""))
                    continue
                if sub in layout.old_modules or sub in layout.module_home:
                    new_sub = layout.new_module(sub)
                    parent, _, last = new_sub.rpartition(".")
                    local = alias.asname or alias.name
                    entry = last + (f" as {local}" if local != last else "")
                    groups.setdefault(parent, []).append(entry)
                    continue
                target, new_name = layout.resolve(mod, alias.name)
                package = exported_by(target)
                if package and new_name in exports.get(package, set()) \
                        and not module.startswith(package + ".") and module != package:
                    target = package
                local = alias.asname or alias.name
                if local != new_name and not alias.asname:
                    renamed[local] = new_name
                    local = new_name
                entry = new_name + (f" as {local}" if local != new_name else "")
                groups.setdefault(target, []).append(entry)
            start, end = span(node, offsets)
            indent = " " * node.col_offset
            new = "\n".join(
                import_line(target, names, indent) for target, names in groups.items()
            ).lstrip()
            edits.append((start, end, new))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PKG) and layout.new_module(alias.name) != alias.name:
                    start, end = span(node, offsets)
                    new = ast.unparse(node).replace(alias.name, layout.new_module(alias.name))
                    edits.append((start, end, new))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            value = node.value
            if re.fullmatch(r"copilot_server(\.\w+)+", value) and \
                    layout.new_module(value) != value and existing_path(value, root) is None:
                start, end = span(node, offsets)
                quote = text[start]
                edits.append((start, end, f"{quote}{layout.new_module(value)}{quote}"))
    if module_aliases:
        added: dict[str, set[str]] = defaultdict(set)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in module_aliases:
                old = module_aliases[node.value.id]
                target, new_name = layout.resolve(old, node.attr)
                imported_as = module_objects[node.value.id]
                if target in (old, imported_as) or not isinstance(node.ctx, ast.Load) or \
                        node.attr in exports.get(imported_as, set()):
                    continue  # still answered by what the alias names (a package re-export)
                if node.value.id in lazy_aliases:
                    report.append(f"{path.relative_to(root)}:{node.lineno}: "
                                  f"{node.value.id}.{node.attr} came from a lazy import; its "
                                  "replacement import is at the top: move it back by hand")
                start, end = span(node, offsets)
                edits.append((start, end, new_name))
                added[target].add(new_name)
            elif isinstance(node, ast.Call) and any(
                isinstance(a, ast.Name) and a.id in module_aliases for a in node.args
            ):
                # setattr(mod, "NAME", v) / getattr(mod, "NAME"): the module NAME lives in now.
                args = node.args
                if len(args) >= 2 and isinstance(args[0], ast.Name) and \
                        args[0].id in module_aliases and isinstance(args[1], ast.Constant) \
                        and isinstance(args[1].value, str):
                    old = module_aliases[args[0].id]
                    target, new_name = layout.resolve(old, args[1].value)
                    if target in (old, module_objects[args[0].id]):
                        continue
                    if new_name == args[1].value:
                        parent, _, last = target.rpartition(".")
                        local = f"{args[0].id}_{last}"
                        start, end = span(args[0], offsets)
                        edits.append((start, end, local))
                        added[parent].add(f"{last} as {local}")
                        report.append(f"{path.relative_to(root)}:{node.lineno}: "
                                      f"{ast.unparse(node)[:60]} now on {target}")
                        continue
                report.append(f"{path.relative_to(root)}:{node.lineno}: passes a split module "
                              f"as a value ({ast.unparse(node)[:70]}): fix by hand")
        if added:
            extra = "\n".join(import_line(t, sorted(n)) for t, n in added.items())
            anchor = next((n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                           and getattr(n, "module", None) != "__future__"), tree.body[-1])
            start, _ = span(anchor, offsets)
            edits.append((start, start, extra + "\n"))
    if not edits and not renamed:
        return False
    edits.sort(key=lambda e: (e[0], e[1]), reverse=True)
    out = text
    last_start = None
    for start, end, new in edits:
        if last_start is not None and end > last_start:
            continue  # nested inside a span already replaced
        out = out[:start] + new + out[end:]
        last_start = start
    for old, new in renamed.items():
        out = rename_word(out, old, new)
    try:
        compile(out, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:  # an import removed from a body of its own
        report.append(f"{path.relative_to(root)}:{exc.lineno}: does not compile after the "
                      f"rewrite ({exc.msg}); fix by hand")
    if out != text:
        path.write_text(out)
        return True
    return False


def publicize(root: Path, report: list[str]) -> None:
    """A private name that one module of the package imports from another is part of that
    module's interface after the split: drop its underscore (where no name collides)."""
    files = python_files(root)
    texts = {p: p.read_text() for p in files}
    imported: dict[tuple[str, str], set[Path]] = defaultdict(set)
    for path, text in texts.items():
        if path.parts[len(root.parts)] != PKG:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PKG):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        imported[(node.module, alias.name)].add(path)
    for (module, name), _users in sorted(imported.items()):
        home = existing_path(module, root)
        if home is None:
            continue
        new = name.lstrip("_")
        pattern = re.compile(rf"from {re.escape(module)} import [^\n]*\b{re.escape(name)}\b"
                             rf"|from {re.escape(module)} import \([^)]*\b{re.escape(name)}\b")
        touched = [home] + [p for p, t in texts.items() if pattern.search(t)]
        clash = [p for p in touched if re.search(rf"(?<![\w.]){re.escape(new)}\b", texts[p])]
        if clash or not new:
            report.append(f"kept private: {module}.{name} (the name {new!r} is taken in "
                          f"{', '.join(str(p.relative_to(root)) for p in clash)})")
            continue
        for path in dict.fromkeys(touched):
            texts[path] = rename_word(texts[path], name, new)
            path.write_text(texts[path])
        report.append(f"public now: {module}.{name} -> {new}")


def relativize(path: Path, root: Path) -> None:
    """Absolute intra-package imports back to relative ones (the house style)."""
    text = path.read_text()
    tree = ast.parse(text)
    offsets = line_offsets(text)
    module = module_of(path, root)
    package = package_of(module, path).split(".")
    edits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                (node.module == PKG or node.module.startswith(PKG + ".")):
            target = node.module.split(".")
            common = 0
            while common < min(len(package), len(target)) and package[common] == target[common]:
                common += 1
            level = len(package) - common + 1
            rest = ".".join(target[common:])
            start, end = span(node, offsets)
            names = [a.name + (f" as {a.asname}" if a.asname else "") for a in node.names]
            line = import_line("." * level + rest, names, " " * node.col_offset).lstrip()
            edits.append((start, end, line))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    path.write_text(text)


# -- commands ----------------------------------------------------------------------------------


def python_files(root: Path) -> list[Path]:
    out = []
    for folder in ("copilot_server", "tests", "benchmarks"):
        base = root / folder
        if base.is_dir():
            out += [p for p in base.rglob("*.py") if "samples" not in p.parts]
    return sorted(out)


def cmd_inventory(root: Path) -> int:
    layout = Layout(root)
    layout.load()
    for module, names in layout.unplaced.items():
        print(f"UNPLACED {module} -> {layout.splits[module]['*'][0]}: {' '.join(names)}")
    for module, names in layout.missing.items():
        if names:
            print(f"LISTED BUT ABSENT {module}: {' '.join(names)}")
    return 0


def cmd_table(root: Path) -> int:
    layout = Layout(root)
    layout.load()
    targets = build_targets(layout)
    for module, new in MOVES.items():
        if module not in layout.splits:
            print(f"- `{new}` ← all of `{module}`")
    for target in sorted(targets):
        names = [f"{m.removeprefix(PKG + '.')}:{p.names[0]}" for m, p in targets[target]["pieces"]]
        doc = DOCS.get(target, "")
        print(f"- `{target}` — {doc}\n  {', '.join(names)}")
    for (module, name), (target, new) in DEDUPE.items():
        print(f"- dedupe `{module}:{name}` → `{target}:{new}`")
    return 0


def cmd_apply(root: Path) -> int:
    layout = Layout(root)
    layout.load()
    before = {p: p.read_text() for p in python_files(root)}
    report: list[str] = []
    for module, names in layout.unplaced.items():
        report.append(f"unplaced names of {module} (went to "
                      f"{layout.splits[module]['*'][0]}): " + " ".join(names))
    targets = build_targets(layout)
    rendered = {t: render_target(layout, t, s) for t, s in targets.items()}
    # 1. Remove what the splits wrote out; move whole modules with a plain move.
    for module in layout.splits:
        src = existing_path(module, root)
        if src is not None and module in layout.parsed:
            src.unlink()
    for module, new in MOVES.items():
        if module in layout.splits:
            continue
        src = existing_path(module, root)
        if src is None:
            report.append(f"missing module {module}")
            continue
        dst = path_of(new, root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(src, dst)
    for old, new in FILE_MOVES.items():
        src, dst = root / old, root / new
        if src.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(src, dst)
    # 2. Write the parts, the packages and their re-exports.
    for target, text in rendered.items():
        dst = path_of(target, root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(text)
    exports: dict[str, set[str]] = {}
    for package, doc in PACKAGES.items():
        init = path_of(package, root, package=True)
        init.parent.mkdir(parents=True, exist_ok=True)
        if not init.exists():
            init.write_text(docstring_of(doc) if doc else "")
    for package, names in EXPORTS.items():
        init = path_of(package, root, package=True)
        parsed = layout.parsed.get(package)
        if names is None:  # a package __init__ that was split keeps its docstring and __all__
            names = parsed.all_names if parsed and parsed.all_names else []
            docstring = parsed.docstring if parsed and parsed.docstring else \
                docstring_of(PACKAGES.get(package, ""))
        else:
            source = layout.parsed.get(KEEP_DOC.get(package, ""))
            docstring = source.docstring if source and source.docstring else \
                docstring_of(PACKAGES[package])
        by_module: dict[str, list[str]] = defaultdict(list)
        for name in names:
            found = None
            target, new = layout.resolve(package, name)
            if target.startswith(package + ".") and new == name:
                found = target
            for (_module, _name), (target, new) in layout.home.items():
                if found is not None:
                    break
                if new == name and target.startswith(package + "."):
                    found = target
                    break
            if found is None:
                for mod in sorted(MOVES.values()):
                    p = existing_path(mod, root)
                    if mod.startswith(package + ".") and p and re.search(
                        rf"^(def|class) {name}\b|^{name}\b", p.read_text(), re.M
                    ):
                        found = mod
            if found is None:
                report.append(f"{package}: cannot find {name} to re-export")
                continue
            by_module[found].append(name)
        lines = [docstring.rstrip("\n"), ""]
        for module, items in sorted(by_module.items()):
            lines.append(import_line(module, sorted(items)))
        exported = sorted(n for items in by_module.values() for n in items)
        lines.append("")
        lines.append("__all__ = [" + ", ".join(f'"{n}"' for n in exported) + "]")
        init.write_text("\n".join(lines) + "\n")
        exports[package] = set(exported)
    # 3. Rewrite imports everywhere, then relative again inside the package.
    for path in python_files(root):
        rewrite_file(layout, path, root, exports, report)
    publicize(root, report)
    for path in python_files(root):
        if path.parts[len(root.parts)] == "copilot_server":
            relativize(path, root)
    for rel, old, new in POST_EDITS:
        p = root / rel
        if p.exists() and old in p.read_text():
            p.write_text(p.read_text().replace(old, new))
        else:
            report.append(f"post-edit not applied in {rel}: {old!r}")
    # 4. ruff, on the files this changed only: drop the imports each part does not use,
    #    sort, format.
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    changed = [str(p.relative_to(root)) for p in python_files(root)
               if before.get(p) != p.read_text()]
    for _ in range(2):
        subprocess.run([ruff, "check", "--fix", "--select", "F401,I001,F811", "--quiet",
                        *changed], cwd=root)
        for rel in changed:
            path = root / rel
            text = path.read_text()
            cleaned = re.sub(r"\nif TYPE_CHECKING:\n    pass\n", "\n", text)
            if cleaned != text:
                path.write_text(cleaned)
    subprocess.run([ruff, "check", "--fix", "--select", "F401,I001", "--quiet", *changed],
                   cwd=root)
    subprocess.run([ruff, "format", "--quiet", *changed], cwd=root)
    report.append(f"{len(changed)} Python files written or changed")
    print("\n".join(report))
    return 0


def absolutize_text(text: str, module: str, is_package: bool) -> str:
    tree = ast.parse(text)
    offsets = line_offsets(text)
    edits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            start, end = span(node, offsets)
            names = [a.name + (f" as {a.asname}" if a.asname else "") for a in node.names]
            edits.append((start, end, import_line(absolute(module, is_package, node), names,
                                                  " " * node.col_offset).lstrip()))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def absolutize_tree(root: Path) -> None:
    """Every relative import in the package made absolute, before anything moves."""
    for path in (root / PKG).rglob("*.py"):
        if "samples" in path.parts:
            continue
        text = path.read_text()
        new = absolutize_text(text, module_of(path, root), path.name == "__init__.py")
        if new != text:
            path.write_text(new)


def cmd_check(root: Path) -> int:
    env = dict(os.environ, PYTHONPATH=str(root))
    py = sys.executable
    steps = [
        [py, "-m", "compileall", "-q", "-x", "samples", "copilot_server", "tests"],
        [py, "-c", (
            "import importlib, pkgutil, sys, copilot_server\n"
            f"assert copilot_server.__file__.startswith({str(root)!r}), copilot_server.__file__\n"
            "bad = 0\n"
            "for m in pkgutil.walk_packages(copilot_server.__path__, 'copilot_server.'):\n"
            "    try:\n"
            "        importlib.import_module(m.name)\n"
            "    except Exception as exc:\n"
            "        bad += 1; print('IMPORT', m.name, type(exc).__name__, exc)\n"
            "sys.exit(1 if bad else 0)\n")],
        [shutil.which("ruff") or str(Path(py).parent / "ruff"), "check", "copilot_server",
         "tests"],
    ]
    rc = 0
    for step in steps:
        print("$", " ".join(step[:4]), "...", flush=True)
        rc |= subprocess.run(step, cwd=root, env=env).returncode
    return rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["inventory", "apply", "check", "table"])
    parser.add_argument("--root", default=".", help="the repository root (default: here)")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    if args.command == "apply":
        absolutize_tree(root)
        return cmd_apply(root)
    return {"inventory": cmd_inventory, "check": cmd_check, "table": cmd_table}[args.command](
        root
    )


if __name__ == "__main__":
    sys.exit(main())
