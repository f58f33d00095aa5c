"""The `c7n-unused-keys` command: `sandbox`, `demo`, `demo-lambda`, `demo-approval`,
`report`, `permissions`, `remove-functions` and `approvals serve|deploy`.

The filter and the action need no command of their own: stock `custodian` and
`c7n-org` load them. This command holds what sits around them.
"""
import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog='c7n-unused-keys',
        description='Companion commands of the c7n-unused-keys Cloud Custodian plugin.')
    sub = parser.add_subparsers(dest='command', required=True)

    sb = sub.add_parser('sandbox', help='serve a local AWS emulator seeded as an organisation')
    sb.add_argument('--port', type=int, default=0, help='port on 127.0.0.1 (default: a free one)')
    sb.add_argument('-c', '--config', default='custodian.yml',
                    help='c7n-org accounts file whose accounts are seeded (default: %(default)s)')
    sb.add_argument('--users', type=_count, default=0, metavar='N',
                    help='extra ordinary users to seed per account, for scale (default: 0)')

    demo = sub.add_parser('demo', help='run the policies org-wide against a fresh sandbox')
    demo.add_argument('-c', '--config', default='custodian.yml')
    demo.add_argument('--policies', default='policies', help='folder of the policy files')
    demo.add_argument('-s', '--output-dir', default='.demo', help='where runs write')

    dl = sub.add_parser('demo-lambda',
                        help='deploy and invoke the lambda/ policies in a fresh sandbox')
    dl.add_argument('-c', '--config', default='custodian.yml')
    dl.add_argument('--policies', default='lambda', help='folder of the Lambda policy files')
    dl.add_argument('-s', '--output-dir', default='.demo-lambda',
                    help="where c7n-org's deployments write")

    rp = sub.add_parser('report', help='one row per key from a custodian or c7n-org output dir')
    rp.add_argument('output_dir', help='the -s folder of the runs, or an s3://bucket/prefix URL '
                    '(read with boto3, which takes AWS_ENDPOINT_URL and credentials from the '
                    'environment)')
    rp.add_argument('--format', choices=('table', 'csv', 'json', 'markdown'), default='table')
    rp.add_argument('--fail-on', choices=('unused', 'actions', 'awaiting-approval', 'errors'),
                    action='append',
                    default=[], help='exit non-zero when the output has any (repeatable)')
    rp.add_argument('-c', '--config', default=None,
                    help='c7n-org accounts file: an account without output counts as failed')
    rp.add_argument('--width', type=int, default=None, help='table width (default: terminal)')

    da = sub.add_parser('demo-approval',
                        help='approve a delete from Slack, end to end, in a fresh sandbox')
    da.add_argument('-c', '--config', default='custodian.yml')
    da.add_argument('-s', '--output-dir', default='.demo-approval', help='where runs write')

    pm = sub.add_parser('permissions', help='the IAM policy document that policies need')
    pm.add_argument('paths', nargs='*', default=['policies'],
                    help='policy files or folders (default: policies); the word '
                    '"approvals" prints the approval app\'s two documents instead (a folder '
                    'of that name: ./approvals)')
    pm.add_argument('-c', '--config', default='approvals.yml',
                    help='with "approvals": the app\'s config (default: %(default)s)')

    ap = sub.add_parser('approvals', help='the app that approves deletes from Slack')
    ap_sub = ap.add_subparsers(dest='approvals_command', required=True)
    serve = ap_sub.add_parser('serve', help="serve it locally (Bolt's HTTP server)")
    serve.add_argument('-c', '--config', required=True, help='approvals.yml')
    serve.add_argument('--host', default='127.0.0.1')
    serve.add_argument('--port', type=int, default=3000)
    dep = ap_sub.add_parser('deploy', help='deploy it as a Lambda function with a URL')
    dep.add_argument('-c', '--config', required=True, help='approvals.yml')

    rm = sub.add_parser('remove-functions',
                        help="remove the Lambda functions of policies from every account")
    rm.add_argument('paths', nargs='+', help='policy files or folders (e.g. lambda)')
    rm.add_argument('-c', '--config', default='custodian.yml',
                    help='c7n-org accounts file (default: %(default)s)')
    rm.add_argument('-a', '--accounts', action='append', default=[], metavar='NAME',
                    help='only these accounts (name or id; repeatable)')
    rm.add_argument('-r', '--region', action='append', default=[], dest='regions',
                    help="only these regions (repeatable; default: each account's regions)")
    rm.add_argument('--dryrun', action='store_true', help='list what would be removed')

    args = parser.parse_args(argv)
    if args.command in ('sandbox', 'demo', 'demo-lambda', 'demo-approval'):
        from c7n_unused_keys_sandbox import MissingExtra, require_extra
        try:
            require_extra()
        except MissingExtra as e:
            print('c7n-unused-keys %s: %s' % (args.command, e), file=sys.stderr)
            return 1
    if args.command == 'sandbox':
        from c7n_unused_keys_sandbox.serve import serve
        return serve(args.port, args.config, args.users)
    if args.command == 'demo':
        from c7n_unused_keys_sandbox.demo import run_demo
        return run_demo(args.config, args.policies, args.output_dir)
    if args.command == 'demo-lambda':
        from c7n_unused_keys_sandbox.demo_lambda import run_demo_lambda
        return run_demo_lambda(args.config, args.policies, args.output_dir)
    if args.command == 'demo-approval':
        from c7n_unused_keys_sandbox.demo_approval import run_demo_approval
        return run_demo_approval(args.config, args.output_dir)
    if args.command == 'approvals':
        try:
            import slack_bolt  # noqa: F401
        except ImportError:
            print("c7n-unused-keys approvals: slack_bolt is not installed; it comes with "
                  "the approvals extra: pip install 'c7n-unused-keys[approvals]'",
                  file=sys.stderr)
            return 1
        if args.approvals_command == 'serve':
            from .approvals.serve import run_serve
            return run_serve(args.config, args.host, args.port)
        from .approvals.deploy import run_deploy
        return run_deploy(args.config)
    if args.command == 'remove-functions':
        from .lambda_remove import run_remove
        return run_remove(args.config, args.paths, args.accounts, args.dryrun, args.regions)
    if args.command == 'permissions' and args.paths == ['approvals']:
        from .approvals.permissions import run_permissions
        return run_permissions(args.config)
    if args.command == 'permissions':
        from .permissions import run_permissions
        return run_permissions(args.paths)
    from .report import run_report
    return run_report(args.output_dir, args.format, args.fail_on, args.config, args.width)


def _count(value: str) -> int:
    # argparse reports a ValueError with the function's name; say what is expected instead.
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(
            'expected a whole number of users, 0 or more, got %r' % value)
    return n


if __name__ == '__main__':
    sys.exit(main())
