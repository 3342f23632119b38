<?php
// Signing out of the app signs out of the chat too: Chattr refuses the user's tokens from now
// on and closes their open sessions.

declare(strict_types=1);
require __DIR__ . '/chattr.php';
app_session();
if ($_SERVER['REQUEST_METHOD'] !== 'POST' || !csrf_ok()) {
    http_response_code(403);
    exit('Sign out with the button.');
}
if (isset($_SESSION['user'])) {
    chattr_api('POST', '/api/revoke', ['user' => $_SESSION['user']]);
}
session_destroy();
header('Location: /');
