# Shared by the Tcl tests: loads the package from $EMBER_TCL_DIR (the build's
# bindings/tcl) and makes embedded brokers.
if {[info exists env(EMBER_TCL_DIR)]} {
    set ::auto_path [linsert $::auto_path 0 $env(EMBER_TCL_DIR)]
}
package require ember

# A started in-process broker (no TCP port unless tcp is true).
proc start_server {{tcp 0} {jetstream 0}} {
    set o [ember::server_options]
    if {$tcp} {
        $o configure -port -1 -host 127.0.0.1
    } else {
        $o configure -dont_listen 1
    }
    if {$jetstream} {
        set tmp [expr {[info exists ::env(TMPDIR)] ? $::env(TMPDIR) : "/tmp"}]
        set dir [file join $tmp "ember-js-[pid]-[clock clicks]"]
        file mkdir $dir
        $o configure -jetstream 1 -store_dir $dir
        lappend ::js_dirs $dir
    }
    set s [ember::server_new $o]
    rename $o ""
    ember::server_start $s
    if {![ember::server_ready_for_connections $s 5000]} {
        error "server not ready: [ember::last_error]"
    }
    return $s
}

proc stop_server {s} {
    ember::server_free $s
    foreach d [set ::js_dirs] { file delete -force $d }
    set ::js_dirs {}
}
set ::js_dirs {}

# The error code list of a failing script: {EMBER <NAME> <code>}, or "ok".
proc ember_error {script} {
    if {[catch {uplevel 1 $script} msg opts]} {
        return [dict get $opts -errorcode]
    }
    return ok
}

# Release the message in the named variable (if set) and unset it: test cleanups run
# even when the body failed before the message existed.
proc release {var} {
    upvar 1 $var m
    if {[info exists m]} {
        ember::msg_release $m
        unset m
    }
}
