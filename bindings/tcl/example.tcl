# example.tcl: an embedded Ember broker as a test fixture, from Tcl.
#
# The code under test, notify_shipped, is an ordinary NATS client over TCP: all it knows
# is a server URL. The test starts a broker inside tclsh on a free loopback port, hands
# the service that URL, and checks what arrived through an in-process subscription of
# the same broker. No nats-server to install, start or clean up; every test gets a
# fresh broker in a few milliseconds.
#
#   EMBER_TCL_DIR=build-swig/bindings/tcl tclsh bindings/tcl/example.tcl
if {[info exists env(EMBER_TCL_DIR)]} {
    set auto_path [linsert $auto_path 0 $env(EMBER_TCL_DIR)]
}
package require ember
package require tcltest 2
namespace import ::tcltest::*

# ---- the code under test: a minimal NATS publisher over TCP
proc notify_shipped {url order} {
    regexp {^nats://([^:]+):([0-9]+)$} $url -> host port
    set s [socket $host $port]
    fconfigure $s -translation {auto crlf} -buffering line
    gets $s info                              ;# INFO {...}
    puts $s {CONNECT {"verbose":false,"pedantic":false}}
    set payload "order $order shipped"
    puts $s "PUB orders.shipped [string length $payload]"
    puts $s $payload
    puts $s PING                              ;# PONG: the server has handled the PUB
    gets $s pong
    close $s
    return $pong
}

# ---- the fixture: a broker on a free port, and an in-process connection to watch it
proc broker_up {} {
    set o [ember::server_options]
    $o configure -port -1 -host 127.0.0.1
    set srv [ember::server_new $o]
    rename $o ""
    ember::server_start $srv
    if {![ember::server_ready_for_connections $srv 5000]} { error [ember::last_error] }
    return $srv
}

test shipped-1.1 {the service announces a shipped order} -setup {
    set srv [broker_up]
    set conn [ember::conn_connect $srv NULL]
    set sub [ember::conn_subscribe $conn orders.> {} $ember::EMBER_DELIVER_POLL]
} -body {
    set pong [notify_shipped [ember::server_client_url $srv] 42]
    set m [ember::sub_next_msg $sub 2000]
    set got [list $pong [ember::msg_subject $m] [ember::msg_data $m]]
    ember::msg_release $m
    set got
} -cleanup {
    ember::conn_close $conn
    ember::server_free $srv
} -result {PONG orders.shipped {order 42 shipped}}

test shipped-1.2 {nothing is published when the service is not called} -setup {
    set srv [broker_up]
    set conn [ember::conn_connect $srv NULL]
    set sub [ember::conn_subscribe $conn orders.> {} $ember::EMBER_DELIVER_POLL]
} -body {
    catch {ember::sub_next_msg $sub 50} err opts
    dict get $opts -errorcode
} -cleanup {
    ember::conn_close $conn
    ember::server_free $srv
} -result {EMBER ETIMEDOUT -2}

# non-zero exit when a test failed (read before cleanupTests resets the counters)
set failed $::tcltest::numTests(Failed)
cleanupTests
exit [expr {$failed > 0}]
