#compdef kubectl-approve

autoload -U is-at-least

_kubectl-approve() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'--kubeconfig=[Path to the kubeconfig file (default\: \$KUBECONFIG, then ~/.kube/config)]:PATH:_files' \
'--context=[The kubeconfig context to use]:CONTEXT:_default' \
'-n+[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--namespace=[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--as=[Act as this user (impersonation)]:USER:_default' \
'*--as-group=[Act with this group (impersonation; repeatable)]:GROUP:_default' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_kubectl-approve_commands" \
"*::: :->kubectl-approve" \
&& ret=0
    case $state in
    (kubectl-approve)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:kubectl-approve-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
'--requester=[Only requests by this user]:USER:_default' \
'-o+[Output format]:OUTPUT:(table wide json yaml name)' \
'--output=[Output format]:OUTPUT:(table wide json yaml name)' \
'--kubeconfig=[Path to the kubeconfig file (default\: \$KUBECONFIG, then ~/.kube/config)]:PATH:_files' \
'--context=[The kubeconfig context to use]:CONTEXT:_default' \
'-n+[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--namespace=[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--as=[Act as this user (impersonation)]:USER:_default' \
'*--as-group=[Act with this group (impersonation; repeatable)]:GROUP:_default' \
'-A[List requests in every namespace]' \
'--all-namespaces[List requests in every namespace]' \
'--all-phases[Include decided and finished requests, not only Pending ones]' \
'--mine[Only requests you may approve (you are an approver under their policy, and not the requester)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(ls)
_arguments "${_arguments_options[@]}" : \
'--requester=[Only requests by this user]:USER:_default' \
'-o+[Output format]:OUTPUT:(table wide json yaml name)' \
'--output=[Output format]:OUTPUT:(table wide json yaml name)' \
'--kubeconfig=[Path to the kubeconfig file (default\: \$KUBECONFIG, then ~/.kube/config)]:PATH:_files' \
'--context=[The kubeconfig context to use]:CONTEXT:_default' \
'-n+[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--namespace=[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--as=[Act as this user (impersonation)]:USER:_default' \
'*--as-group=[Act with this group (impersonation; repeatable)]:GROUP:_default' \
'-A[List requests in every namespace]' \
'--all-namespaces[List requests in every namespace]' \
'--all-phases[Include decided and finished requests, not only Pending ones]' \
'--mine[Only requests you may approve (you are an approver under their policy, and not the requester)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(describe)
_arguments "${_arguments_options[@]}" : \
'-o+[Output format\: table is the readable layout]:OUTPUT:(table wide json yaml name)' \
'--output=[Output format\: table is the readable layout]:OUTPUT:(table wide json yaml name)' \
'--kubeconfig=[Path to the kubeconfig file (default\: \$KUBECONFIG, then ~/.kube/config)]:PATH:_files' \
'--context=[The kubeconfig context to use]:CONTEXT:_default' \
'-n+[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--namespace=[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--as=[Act as this user (impersonation)]:USER:_default' \
'*--as-group=[Act with this group (impersonation; repeatable)]:GROUP:_default' \
'-h[Print help]' \
'--help[Print help]' \
':name:_default' \
&& ret=0
;;
(diff)
_arguments "${_arguments_options[@]}" : \
'-o+[Output format\: table is the readable layout]:OUTPUT:(table wide json yaml name)' \
'--output=[Output format\: table is the readable layout]:OUTPUT:(table wide json yaml name)' \
'--kubeconfig=[Path to the kubeconfig file (default\: \$KUBECONFIG, then ~/.kube/config)]:PATH:_files' \
'--context=[The kubeconfig context to use]:CONTEXT:_default' \
'-n+[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--namespace=[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--as=[Act as this user (impersonation)]:USER:_default' \
'*--as-group=[Act with this group (impersonation; repeatable)]:GROUP:_default' \
'-h[Print help]' \
'--help[Print help]' \
':name:_default' \
&& ret=0
;;
(approve)
_arguments "${_arguments_options[@]}" : \
'--comment=[A note for the record]:COMMENT:_default' \
'--requester=[With --all\: only requests by this user]:USER:_default' \
'--kubeconfig=[Path to the kubeconfig file (default\: \$KUBECONFIG, then ~/.kube/config)]:PATH:_files' \
'--context=[The kubeconfig context to use]:CONTEXT:_default' \
'-n+[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--namespace=[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--as=[Act as this user (impersonation)]:USER:_default' \
'*--as-group=[Act with this group (impersonation; repeatable)]:GROUP:_default' \
'--all[Approve every Pending request in the namespace you may approve (with --requester, only theirs)]' \
'-y[With --all\: do not ask for confirmation]' \
'--yes[With --all\: do not ask for confirmation]' \
'-h[Print help]' \
'--help[Print help]' \
'*::names -- The requests to approve:_default' \
&& ret=0
;;
(deny)
_arguments "${_arguments_options[@]}" : \
'--reason=[Why; recorded in the request and its Events]:REASON:_default' \
'--kubeconfig=[Path to the kubeconfig file (default\: \$KUBECONFIG, then ~/.kube/config)]:PATH:_files' \
'--context=[The kubeconfig context to use]:CONTEXT:_default' \
'-n+[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--namespace=[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--as=[Act as this user (impersonation)]:USER:_default' \
'*--as-group=[Act with this group (impersonation; repeatable)]:GROUP:_default' \
'-h[Print help]' \
'--help[Print help]' \
':name:_default' \
&& ret=0
;;
(revoke)
_arguments "${_arguments_options[@]}" : \
'--reason=[Why; recorded in the request and its Events]:REASON:_default' \
'--kubeconfig=[Path to the kubeconfig file (default\: \$KUBECONFIG, then ~/.kube/config)]:PATH:_files' \
'--context=[The kubeconfig context to use]:CONTEXT:_default' \
'-n+[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--namespace=[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--as=[Act as this user (impersonation)]:USER:_default' \
'*--as-group=[Act with this group (impersonation; repeatable)]:GROUP:_default' \
'-h[Print help]' \
'--help[Print help]' \
':name:_default' \
&& ret=0
;;
(wait)
_arguments "${_arguments_options[@]}" : \
'--timeout=[Give up after this long (for example 90s, 10m, 1h)]:TIMEOUT:_default' \
'--kubeconfig=[Path to the kubeconfig file (default\: \$KUBECONFIG, then ~/.kube/config)]:PATH:_files' \
'--context=[The kubeconfig context to use]:CONTEXT:_default' \
'-n+[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--namespace=[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--as=[Act as this user (impersonation)]:USER:_default' \
'*--as-group=[Act with this group (impersonation; repeatable)]:GROUP:_default' \
'-h[Print help]' \
'--help[Print help]' \
':name:_default' \
&& ret=0
;;
(run)
_arguments "${_arguments_options[@]}" : \
'--timeout=[How long to wait for a decision]:TIMEOUT:_default' \
'--kubeconfig=[Path to the kubeconfig file (default\: \$KUBECONFIG, then ~/.kube/config)]:PATH:_files' \
'--context=[The kubeconfig context to use]:CONTEXT:_default' \
'-n+[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--namespace=[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--as=[Act as this user (impersonation)]:USER:_default' \
'*--as-group=[Act with this group (impersonation; repeatable)]:GROUP:_default' \
'-h[Print help]' \
'--help[Print help]' \
'*::command -- The command and its arguments, after `--`:_default' \
&& ret=0
;;
(request)
_arguments "${_arguments_options[@]}" : \
'--operation=[CREATE, UPDATE, DELETE or CONNECT]:OPERATION:(CREATE UPDATE DELETE CONNECT)' \
'--reason=[Why the action is needed, for the approver]:REASON:_default' \
'--policy=[The ApprovalPolicy to ask under (default\: the only one that holds the action)]:POLICY:_default' \
'-o+[Output format]:OUTPUT:(table wide json yaml name)' \
'--output=[Output format]:OUTPUT:(table wide json yaml name)' \
'--kubeconfig=[Path to the kubeconfig file (default\: \$KUBECONFIG, then ~/.kube/config)]:PATH:_files' \
'--context=[The kubeconfig context to use]:CONTEXT:_default' \
'-n+[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--namespace=[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--as=[Act as this user (impersonation)]:USER:_default' \
'*--as-group=[Act with this group (impersonation; repeatable)]:GROUP:_default' \
'-h[Print help]' \
'--help[Print help]' \
':target -- The object\: resource\[.group\]/name, for example deployment/checkout or deployments.apps/checkout:_default' \
&& ret=0
;;
(completion)
_arguments "${_arguments_options[@]}" : \
'--kubeconfig=[Path to the kubeconfig file (default\: \$KUBECONFIG, then ~/.kube/config)]:PATH:_files' \
'--context=[The kubeconfig context to use]:CONTEXT:_default' \
'-n+[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--namespace=[The namespace (default\: the context'\''s namespace)]:NAMESPACE:_default' \
'--as=[Act as this user (impersonation)]:USER:_default' \
'*--as-group=[Act with this group (impersonation; repeatable)]:GROUP:_default' \
'-h[Print help]' \
'--help[Print help]' \
':shell -- The shell to complete for:(bash elvish fish powershell zsh)' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_kubectl-approve__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:kubectl-approve-help-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(describe)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(diff)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(approve)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(deny)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(revoke)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(wait)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(run)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(request)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(completion)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
}

(( $+functions[_kubectl-approve_commands] )) ||
_kubectl-approve_commands() {
    local commands; commands=(
'list:List approval requests (Pending ones, unless --all-phases)' \
'ls:List approval requests (Pending ones, unless --all-phases)' \
'describe:Show one request\: the action, who asked and why, approvals, time left and Events' \
'diff:Show only the change a request would make, as \`kubectl diff\` prints it (-o json\: the structured change)' \
'approve:Approve one or more requests (also the default\: \`kubectl approve NAME...\`)' \
'deny:Deny a request, with a reason' \
'revoke:Withdraw an approval before it is used, with a reason' \
'wait:Wait until a request is decided; the exit code tells the outcome' \
'run:Run a command; if approval-gate holds it, wait for approval and run it again' \
'request:Ask for approval by hand (for policies that do not bind approvals to content)' \
'completion:Print a shell completion script (bash, zsh or fish)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'kubectl-approve commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__approve_commands] )) ||
_kubectl-approve__subcmd__approve_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve approve commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__completion_commands] )) ||
_kubectl-approve__subcmd__completion_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve completion commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__deny_commands] )) ||
_kubectl-approve__subcmd__deny_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve deny commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__describe_commands] )) ||
_kubectl-approve__subcmd__describe_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve describe commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__diff_commands] )) ||
_kubectl-approve__subcmd__diff_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve diff commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__help_commands] )) ||
_kubectl-approve__subcmd__help_commands() {
    local commands; commands=(
'list:List approval requests (Pending ones, unless --all-phases)' \
'describe:Show one request\: the action, who asked and why, approvals, time left and Events' \
'diff:Show only the change a request would make, as \`kubectl diff\` prints it (-o json\: the structured change)' \
'approve:Approve one or more requests (also the default\: \`kubectl approve NAME...\`)' \
'deny:Deny a request, with a reason' \
'revoke:Withdraw an approval before it is used, with a reason' \
'wait:Wait until a request is decided; the exit code tells the outcome' \
'run:Run a command; if approval-gate holds it, wait for approval and run it again' \
'request:Ask for approval by hand (for policies that do not bind approvals to content)' \
'completion:Print a shell completion script (bash, zsh or fish)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'kubectl-approve help commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__help__subcmd__approve_commands] )) ||
_kubectl-approve__subcmd__help__subcmd__approve_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve help approve commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__help__subcmd__completion_commands] )) ||
_kubectl-approve__subcmd__help__subcmd__completion_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve help completion commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__help__subcmd__deny_commands] )) ||
_kubectl-approve__subcmd__help__subcmd__deny_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve help deny commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__help__subcmd__describe_commands] )) ||
_kubectl-approve__subcmd__help__subcmd__describe_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve help describe commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__help__subcmd__diff_commands] )) ||
_kubectl-approve__subcmd__help__subcmd__diff_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve help diff commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__help__subcmd__help_commands] )) ||
_kubectl-approve__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve help help commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__help__subcmd__list_commands] )) ||
_kubectl-approve__subcmd__help__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve help list commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__help__subcmd__request_commands] )) ||
_kubectl-approve__subcmd__help__subcmd__request_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve help request commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__help__subcmd__revoke_commands] )) ||
_kubectl-approve__subcmd__help__subcmd__revoke_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve help revoke commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__help__subcmd__run_commands] )) ||
_kubectl-approve__subcmd__help__subcmd__run_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve help run commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__help__subcmd__wait_commands] )) ||
_kubectl-approve__subcmd__help__subcmd__wait_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve help wait commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__list_commands] )) ||
_kubectl-approve__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve list commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__request_commands] )) ||
_kubectl-approve__subcmd__request_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve request commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__revoke_commands] )) ||
_kubectl-approve__subcmd__revoke_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve revoke commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__run_commands] )) ||
_kubectl-approve__subcmd__run_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve run commands' commands "$@"
}
(( $+functions[_kubectl-approve__subcmd__wait_commands] )) ||
_kubectl-approve__subcmd__wait_commands() {
    local commands; commands=()
    _describe -t commands 'kubectl-approve wait commands' commands "$@"
}

if [ "$funcstack[1]" = "_kubectl-approve" ]; then
    _kubectl-approve "$@"
else
    compdef _kubectl-approve kubectl-approve
fi
