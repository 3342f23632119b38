<?php
// The webhook events received so far, newest last, as JSON.

declare(strict_types=1);
require __DIR__ . '/chattr.php';
$log = webhook_log();
$lines = is_file($log) ? file($log, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) : [];
header('Content-Type: application/json');
echo '[' . implode(',', array_slice($lines, -200)) . ']';
