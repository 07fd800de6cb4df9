# smoke.sh — sourced by the smoke tests of cli/CMakeLists.txt and
# witness/CMakeLists.txt (freshet_smoke_test): run a command, print what
# it said, and stop the test unless it exited as expected and said what
# was expected.  Patterns are grep basic regular expressions, matched
# against standard output and standard error together.

# check RC PATTERN CMD [ARG...]: CMD with standard input from /dev/null.
check() {
	_want=$1 _pat=$2
	shift 2
	_out=$("$@" 2>&1 </dev/null)
	_judge $?
}

# check_in TEXT RC PATTERN CMD [ARG...]: the same with TEXT (printf's %b:
# \n is a newline) on standard input.
check_in() {
	_in=$1 _want=$2 _pat=$3
	shift 3
	_out=$(printf '%b' "$_in" | "$@" 2>&1)
	_judge $?
}

_judge() {
	printf '%s\n' "$_out"
	if [ "$1" -eq "$_want" ] && printf '%s\n' "$_out" | grep -q -e "$_pat"
	then
		return 0
	fi
	printf 'FAILED: expected exit %s and output matching "%s"; got exit %s\n' \
		"$_want" "$_pat" "$1"
	exit 1
}
