<?php
// The webhook events received so far, newest last, as JSON: for the app's operators (and its
// tests), with the shared secret; they include private messages.

declare(strict_types=1);
require __DIR__ . '/chattr.php';
if (!hash_equals('Bearer ' . chattr_secret(), $_SERVER['HTTP_AUTHORIZATION'] ?? '')) {
    http_response_code(401);
    exit('operators only');
}
$log = webhook_log();
$lines = is_file($log) ? file($log, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) : [];
header('Content-Type: application/json');
echo '[' . implode(',', array_slice($lines, -200)) . ']';
