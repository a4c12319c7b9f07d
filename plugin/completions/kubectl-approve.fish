# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_kubectl_approve_global_optspecs
    string join \n kubeconfig= context= n/namespace= as= as-group= h/help V/version
end

function __fish_kubectl_approve_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_kubectl_approve_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_kubectl_approve_using_subcommand
    set -l cmd (__fish_kubectl_approve_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -l kubeconfig -d 'Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -l context -d 'The kubeconfig context to use' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -s n -l namespace -d 'The namespace (default: the context\'s namespace)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -l as -d 'Act as this user (impersonation)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -l as-group -d 'Act with this group (impersonation; repeatable)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -s h -l help -d 'Print help'
complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -s V -l version -d 'Print version'
complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -f -a "list" -d 'List approval requests (Pending ones, unless --all-phases)'
complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -f -a "ls" -d 'List approval requests (Pending ones, unless --all-phases)'
complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -f -a "describe" -d 'Show one request: the action, who asked and why, approvals, time left and Events'
complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -f -a "diff" -d 'Show only the change a request would make, as `kubectl diff` prints it (-o json: the structured change)'
complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -f -a "approve" -d 'Approve one or more requests (also the default: `kubectl approve NAME...`)'
complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -f -a "deny" -d 'Deny a request, with a reason'
complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -f -a "revoke" -d 'Withdraw an approval before it is used, with a reason'
complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -f -a "wait" -d 'Wait until a request is decided; the exit code tells the outcome'
complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -f -a "run" -d 'Run a command; if approval-gate holds it, wait for approval and run it again'
complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -f -a "request" -d 'Ask for approval by hand (for policies that do not bind approvals to content)'
complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -f -a "completion" -d 'Print a shell completion script (bash, zsh or fish)'
complete -c kubectl-approve -n "__fish_kubectl_approve_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand list" -l requester -d 'Only requests by this user' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand list" -s o -l output -d 'Output format' -r -f -a "table\t''
wide\t''
json\t''
yaml\t''
name\t''"
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand list" -l kubeconfig -d 'Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand list" -l context -d 'The kubeconfig context to use' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand list" -s n -l namespace -d 'The namespace (default: the context\'s namespace)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand list" -l as -d 'Act as this user (impersonation)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand list" -l as-group -d 'Act with this group (impersonation; repeatable)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand list" -s A -l all-namespaces -d 'List requests in every namespace'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand list" -l all-phases -d 'Include decided and finished requests, not only Pending ones'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand list" -l mine -d 'Only requests you may approve (you are an approver under their policy, and not the requester)'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand list" -s h -l help -d 'Print help'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand ls" -l requester -d 'Only requests by this user' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand ls" -s o -l output -d 'Output format' -r -f -a "table\t''
wide\t''
json\t''
yaml\t''
name\t''"
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand ls" -l kubeconfig -d 'Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand ls" -l context -d 'The kubeconfig context to use' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand ls" -s n -l namespace -d 'The namespace (default: the context\'s namespace)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand ls" -l as -d 'Act as this user (impersonation)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand ls" -l as-group -d 'Act with this group (impersonation; repeatable)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand ls" -s A -l all-namespaces -d 'List requests in every namespace'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand ls" -l all-phases -d 'Include decided and finished requests, not only Pending ones'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand ls" -l mine -d 'Only requests you may approve (you are an approver under their policy, and not the requester)'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand ls" -s h -l help -d 'Print help'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand describe" -s o -l output -d 'Output format: table is the readable layout' -r -f -a "table\t''
wide\t''
json\t''
yaml\t''
name\t''"
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand describe" -l kubeconfig -d 'Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand describe" -l context -d 'The kubeconfig context to use' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand describe" -s n -l namespace -d 'The namespace (default: the context\'s namespace)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand describe" -l as -d 'Act as this user (impersonation)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand describe" -l as-group -d 'Act with this group (impersonation; repeatable)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand describe" -s h -l help -d 'Print help'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand diff" -s o -l output -d 'Output format: table is the readable layout' -r -f -a "table\t''
wide\t''
json\t''
yaml\t''
name\t''"
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand diff" -l kubeconfig -d 'Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand diff" -l context -d 'The kubeconfig context to use' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand diff" -s n -l namespace -d 'The namespace (default: the context\'s namespace)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand diff" -l as -d 'Act as this user (impersonation)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand diff" -l as-group -d 'Act with this group (impersonation; repeatable)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand diff" -s h -l help -d 'Print help'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand approve" -l comment -d 'A note for the record' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand approve" -l requester -d 'With --all: only requests by this user' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand approve" -l kubeconfig -d 'Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand approve" -l context -d 'The kubeconfig context to use' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand approve" -s n -l namespace -d 'The namespace (default: the context\'s namespace)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand approve" -l as -d 'Act as this user (impersonation)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand approve" -l as-group -d 'Act with this group (impersonation; repeatable)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand approve" -l all -d 'Approve every Pending request in the namespace you may approve (with --requester, only theirs)'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand approve" -s y -l yes -d 'With --all: do not ask for confirmation'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand approve" -s h -l help -d 'Print help'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand deny" -l reason -d 'Why; recorded in the request and its Events' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand deny" -l kubeconfig -d 'Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand deny" -l context -d 'The kubeconfig context to use' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand deny" -s n -l namespace -d 'The namespace (default: the context\'s namespace)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand deny" -l as -d 'Act as this user (impersonation)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand deny" -l as-group -d 'Act with this group (impersonation; repeatable)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand deny" -s h -l help -d 'Print help'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand revoke" -l reason -d 'Why; recorded in the request and its Events' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand revoke" -l kubeconfig -d 'Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand revoke" -l context -d 'The kubeconfig context to use' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand revoke" -s n -l namespace -d 'The namespace (default: the context\'s namespace)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand revoke" -l as -d 'Act as this user (impersonation)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand revoke" -l as-group -d 'Act with this group (impersonation; repeatable)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand revoke" -s h -l help -d 'Print help'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand wait" -l timeout -d 'Give up after this long (for example 90s, 10m, 1h)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand wait" -l kubeconfig -d 'Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand wait" -l context -d 'The kubeconfig context to use' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand wait" -s n -l namespace -d 'The namespace (default: the context\'s namespace)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand wait" -l as -d 'Act as this user (impersonation)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand wait" -l as-group -d 'Act with this group (impersonation; repeatable)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand wait" -s h -l help -d 'Print help'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand run" -l timeout -d 'How long to wait for a decision' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand run" -l kubeconfig -d 'Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand run" -l context -d 'The kubeconfig context to use' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand run" -s n -l namespace -d 'The namespace (default: the context\'s namespace)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand run" -l as -d 'Act as this user (impersonation)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand run" -l as-group -d 'Act with this group (impersonation; repeatable)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand run" -s h -l help -d 'Print help'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand request" -l operation -d 'CREATE, UPDATE, DELETE or CONNECT' -r -f -a "CREATE\t''
UPDATE\t''
DELETE\t''
CONNECT\t''"
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand request" -l reason -d 'Why the action is needed, for the approver' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand request" -l policy -d 'The ApprovalPolicy to ask under (default: the only one that holds the action)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand request" -s o -l output -d 'Output format' -r -f -a "table\t''
wide\t''
json\t''
yaml\t''
name\t''"
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand request" -l kubeconfig -d 'Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand request" -l context -d 'The kubeconfig context to use' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand request" -s n -l namespace -d 'The namespace (default: the context\'s namespace)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand request" -l as -d 'Act as this user (impersonation)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand request" -l as-group -d 'Act with this group (impersonation; repeatable)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand request" -s h -l help -d 'Print help'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand completion" -l kubeconfig -d 'Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand completion" -l context -d 'The kubeconfig context to use' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand completion" -s n -l namespace -d 'The namespace (default: the context\'s namespace)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand completion" -l as -d 'Act as this user (impersonation)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand completion" -l as-group -d 'Act with this group (impersonation; repeatable)' -r
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand completion" -s h -l help -d 'Print help'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand help; and not __fish_seen_subcommand_from list describe diff approve deny revoke wait run request completion help" -f -a "list" -d 'List approval requests (Pending ones, unless --all-phases)'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand help; and not __fish_seen_subcommand_from list describe diff approve deny revoke wait run request completion help" -f -a "describe" -d 'Show one request: the action, who asked and why, approvals, time left and Events'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand help; and not __fish_seen_subcommand_from list describe diff approve deny revoke wait run request completion help" -f -a "diff" -d 'Show only the change a request would make, as `kubectl diff` prints it (-o json: the structured change)'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand help; and not __fish_seen_subcommand_from list describe diff approve deny revoke wait run request completion help" -f -a "approve" -d 'Approve one or more requests (also the default: `kubectl approve NAME...`)'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand help; and not __fish_seen_subcommand_from list describe diff approve deny revoke wait run request completion help" -f -a "deny" -d 'Deny a request, with a reason'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand help; and not __fish_seen_subcommand_from list describe diff approve deny revoke wait run request completion help" -f -a "revoke" -d 'Withdraw an approval before it is used, with a reason'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand help; and not __fish_seen_subcommand_from list describe diff approve deny revoke wait run request completion help" -f -a "wait" -d 'Wait until a request is decided; the exit code tells the outcome'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand help; and not __fish_seen_subcommand_from list describe diff approve deny revoke wait run request completion help" -f -a "run" -d 'Run a command; if approval-gate holds it, wait for approval and run it again'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand help; and not __fish_seen_subcommand_from list describe diff approve deny revoke wait run request completion help" -f -a "request" -d 'Ask for approval by hand (for policies that do not bind approvals to content)'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand help; and not __fish_seen_subcommand_from list describe diff approve deny revoke wait run request completion help" -f -a "completion" -d 'Print a shell completion script (bash, zsh or fish)'
complete -c kubectl-approve -n "__fish_kubectl_approve_using_subcommand help; and not __fish_seen_subcommand_from list describe diff approve deny revoke wait run request completion help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
