#!/bin/sh
# The mail account's GitOps steps, one place for both pipelines (github/mailcore.yml and
# gitlab/.gitlab-ci.yml call it; mailcore's own tests run it against a local store and DNS).
#
#   mailcore-ci.sh pr      validate, plan: PLAN_FILE (for apply) and PLAN_COMMENT (markdown)
#   mailcore-ci.sh apply   apply exactly PLAN_FILE; refused (exit 2) if the config, the store or
#                          DNS moved since it was planned: plan again and review
#   mailcore-ci.sh drift   verify live DNS, then plan: fails (exit 1) when the store or DNS no
#                          longer match the config on main (PLAN_COMMENT says what differs)
#
# Environment: MAILCORE (the command, default `mailcore`), MAILCORE_CONFIG, MAILCORE_STORE_URL,
# MAILCORE_STATE_DIR, MAILCORE_MASTER_KEY and the secrets the config references;
# PLAN_FILE (default plan.json), PLAN_COMMENT (default plan.md).
set -u
MAILCORE=${MAILCORE:-mailcore}
PLAN_FILE=${PLAN_FILE:-plan.json}
PLAN_COMMENT=${PLAN_COMMENT:-plan.md}

case "${1:-}" in
pr)
    $MAILCORE validate || exit 2
    $MAILCORE plan --format markdown --out "$PLAN_FILE" > "$PLAN_COMMENT"
    rc=$?
    cat "$PLAN_COMMENT"
    # 0: no changes, 3: changes (both fine for a pull request), 2: refused or an error
    [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || exit 2
    ;;
apply)
    [ -f "$PLAN_FILE" ] || { echo "error: no reviewed plan at $PLAN_FILE; run the pull request's plan first" >&2; exit 2; }
    $MAILCORE apply "$PLAN_FILE" || exit 2
    ;;
drift)
    $MAILCORE verify
    verified=$?
    $MAILCORE plan --format markdown > "$PLAN_COMMENT"
    rc=$?
    cat "$PLAN_COMMENT"
    if [ "$rc" -eq 2 ]; then exit 2; fi
    if [ "$rc" -eq 3 ]; then echo "drift: the store or DNS no longer match the config on main" >&2; exit 1; fi
    if [ "$verified" -ne 0 ]; then echo "drift: DNS records do not verify" >&2; exit 1; fi
    echo "no drift"
    ;;
*)
    echo "usage: $0 pr|apply|drift" >&2
    exit 2
    ;;
esac
